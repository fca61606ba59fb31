#!/usr/bin/env bash
# Downloads the real MNIST and CIFAR-10 (binary version) into data/ and checks their SHA-256
# checksums. Without it every experiment still runs, on the built-in synthetic sets.
#
#   scripts/fetch-data.sh                      # both, into ./data
#   scripts/fetch-data.sh --data-dir DIR       # somewhere else (then pass --data-dir DIR to experiments)
#   scripts/fetch-data.sh --only mnist         # or --only cifar10
#
# Result: DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (read gzipped directly) and
# DIR/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin. Files already present and verified
# are not downloaded again. A file whose checksum does not match is deleted and the script fails:
# nothing unverified is ever left in place. Offline, or when every mirror fails, the script says
# so, explains how to place the files by hand (it then verifies them), and exits with status 1.
set -euo pipefail

data_dir=data
only=all
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) data_dir="${2:?--data-dir needs a directory}"; shift 2 ;;
    --data-dir=*) data_dir="${1#*=}"; shift ;;
    --only) only="${2:?--only needs mnist or cifar10}"; shift 2 ;;
    --only=*) only="${1#*=}"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "fetch-data.sh: unknown option '$1' (expected --data-dir DIR, --only mnist|cifar10, --help)" >&2; exit 2 ;;
  esac
done
case "$only" in all|mnist|cifar10) ;; *) echo "fetch-data.sh: --only must be mnist or cifar10, got '$only'" >&2; exit 2 ;; esac

# Published SHA-256 checksums (the MNIST values are the ones torchvision / TensorFlow Datasets
# use; the CIFAR-10 value is of the archive whose MD5 the CIFAR page lists,
# c32a1d4ab5d03f1284b67883e8d87530, which is checked as well).
declare -A SHA256=(
  [train-images-idx3-ubyte.gz]=440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609
  [train-labels-idx1-ubyte.gz]=3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c
  [t10k-images-idx3-ubyte.gz]=8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6
  [t10k-labels-idx1-ubyte.gz]=f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6
  [cifar-10-binary.tar.gz]=c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd
)
CIFAR_MD5=c32a1d4ab5d03f1284b67883e8d87530
MNIST_MIRRORS=(
  https://ossci-datasets.s3.amazonaws.com/mnist
  https://storage.googleapis.com/cvdf-datasets/mnist
)
CIFAR_URLS=(https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz)

say() { echo "fetch-data: $*"; }
fail() { echo "fetch-data: error: $*" >&2; exit 1; }

command -v sha256sum >/dev/null || fail "sha256sum is missing (coreutils)"
if command -v curl >/dev/null; then
  fetch() { curl --fail --location --silent --show-error --connect-timeout 15 --retry 2 -o "$2" "$1"; }
elif command -v wget >/dev/null; then
  fetch() { wget --quiet --timeout=15 --tries=3 -O "$2" "$1"; }
else
  fail "neither curl nor wget is installed; install one (apt-get install curl) or place the files by hand (see --help)"
fi

# verify FILE NAME: 0 when FILE has the published checksum of NAME.
verify() {
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "${SHA256[$2]}" ]
}

offline_help() {
  cat >&2 <<EOF
fetch-data: could not download $1 (no network, or every mirror failed).
  Nothing is lost: experiments fall back to the built-in synthetic sets (synthetic-digits,
  synthetic-textures, synthetic-composite) and say so when they start.
  To use the real data, download these files on a machine with network access:
$2
  put them in $3, and run this script again: it verifies the SHA-256 checksums and
  completes the installation without downloading.
EOF
}

# get NAME DEST_DIR URL...: makes DEST_DIR/NAME a verified copy (download to .part, check, rename).
get() {
  local name=$1 dest=$2
  shift 2
  local target="$dest/$name"
  mkdir -p "$dest"
  if [ -f "$target" ]; then
    if verify "$target" "$name"; then
      say "$target: present, checksum OK"
      return 0
    fi
    local found
    found=$(sha256sum "$target" | cut -d' ' -f1)
    rm -f "$target"
    fail "$target: SHA-256 mismatch (expected ${SHA256[$name]}, found $found); deleted it, run again to download a fresh copy"
  fi
  local url part="$target.part.$$"
  for url in "$@"; do
    say "downloading $url"
    if fetch "$url" "$part" 2>/dev/null; then
      if verify "$part" "$name"; then
        mv -f "$part" "$target"
        say "$target: checksum OK"
        return 0
      fi
      local found
      found=$(sha256sum "$part" | cut -d' ' -f1)
      rm -f "$part"
      fail "$url: SHA-256 mismatch (expected ${SHA256[$name]}, found $found); the file was deleted"
    fi
    rm -f "$part"
  done
  return 1
}

status=0

if [ "$only" = all ] || [ "$only" = mnist ]; then
  mnist_dir="$data_dir/mnist"
  missing=""
  for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    urls=()
    for m in "${MNIST_MIRRORS[@]}"; do urls+=("$m/$f"); done
    if ! get "$f" "$mnist_dir" "${urls[@]}"; then missing+="    ${MNIST_MIRRORS[0]}/$f"$'\n'; fi
  done
  if [ -n "$missing" ]; then
    offline_help "MNIST" "${missing%$'\n'}" "$mnist_dir/"
    status=1
  else
    say "MNIST ready in $mnist_dir"
  fi
fi

if [ "$only" = all ] || [ "$only" = cifar10 ]; then
  cifar_dir="$data_dir/cifar-10-batches-bin"
  have_all=1
  for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin; do
    [ -f "$cifar_dir/$f" ] || have_all=0
  done
  archive="$data_dir/cifar-10-binary.tar.gz"
  if [ "$have_all" = 1 ] && [ ! -f "$archive" ]; then
    say "CIFAR-10 already extracted in $cifar_dir (keep $archive next to it to have it re-verified)"
  elif get cifar-10-binary.tar.gz "$data_dir" "${CIFAR_URLS[@]}"; then
    if command -v md5sum >/dev/null && [ "$(md5sum "$archive" | cut -d' ' -f1)" != "$CIFAR_MD5" ]; then
      rm -f "$archive"
      fail "$archive: MD5 does not match the published $CIFAR_MD5; deleted it"
    fi
    tar -xzf "$archive" -C "$data_dir" cifar-10-batches-bin
    for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin; do
      size=$(stat -c %s "$cifar_dir/$f")
      [ "$size" -eq $((3073 * 10000)) ] || fail "$cifar_dir/$f: expected $((3073 * 10000)) bytes after extraction, found $size"
    done
    say "CIFAR-10 ready in $cifar_dir"
  else
    offline_help "CIFAR-10" "    ${CIFAR_URLS[0]}" "$data_dir/"
    status=1
  fi
fi

exit $status
