#!/usr/bin/env bash
# Installs the Debian packages Scalpel needs to build, test, benchmark and plot, and only those
# that are missing. Safe to run again; prints what it installs. Works as root or through sudo.
#
#   scripts/bootstrap.sh            # the build/test/bench/plot set
#   scripts/bootstrap.sh --fuzz     # also clang, its sanitizer runtime and OpenMP, for `make fuzz`
#   scripts/bootstrap.sh --docs     # also doxygen, for `make docs`
#   scripts/bootstrap.sh --check    # only report what is missing (exit 1 if anything is)
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  # OpenBLAS: the OpenMP build, so BLAS and our own parallel loops share one OpenMP thread pool
  # (see README "Threads").
  libopenblas-openmp-dev libopenblas-dev
  libeigen3-dev libstb-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  zlib1g-dev libcli11-dev nlohmann-json3-dev
  # gnuplot without the X/Qt front ends: we only write PNG/SVG files.
  gnuplot-nox
  # OpenMPI: data-parallel training under mpirun (core/dist.h) and its tests.
  libopenmpi-dev openmpi-bin
)
check_only=0
for arg in "$@"; do
  case "$arg" in
    --fuzz) packages+=(clang libclang-rt-14-dev libomp-dev) ;;
    --docs) packages+=(doxygen python3) ;;
    --check) check_only=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "bootstrap.sh: unknown option '$arg' (expected --fuzz, --docs, --check or --help)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#packages[@]} required packages are installed"
  exit 0
fi
echo "bootstrap: missing packages: ${missing[*]}"
if [ "$check_only" = 1 ]; then exit 1; fi

if [ "$(id -u)" -eq 0 ]; then
  sudo_cmd=()
elif command -v sudo >/dev/null 2>&1; then
  sudo_cmd=(sudo)
else
  echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "bootstrap: apt-get update"
"${sudo_cmd[@]}" apt-get update -qq
echo "bootstrap: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "bootstrap: done"
