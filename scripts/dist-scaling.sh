#!/usr/bin/env bash
# Data-parallel scaling on this machine (make bench-dist): the same runs as one process and under
# `mpirun -np 2` over loopback (shared memory), same global batch, and a markdown table of the
# median step time, the time per step spent in the collectives (comm_ms, waiting included) and
# the speed-up. A benchmark, never a test: the machines are shared and noisy, so read the ratios.
#
#   scripts/dist-scaling.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
build=${1:-build}
out=${2:-runs/dist-scaling}
mpirun=$(command -v mpirun || true)
if [ -z "$mpirun" ]; then
  echo "dist-scaling: mpirun not found; run scripts/bootstrap.sh (it installs openmpi-bin) and rebuild" >&2
  exit 2
fi
# Root (containers, CI) and container-safe shared memory, as in the tests.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo  # one machine: loopback only
export OMP_WAIT_POLICY=passive
rm -rf "$out"
mkdir -p "$out"

# median of a column over the rows of metrics.csv files after the first (step 0 has no step time)
median_col() {
  local col=$1
  shift
  awk -F, -v col="$col" 'FNR == 1 { c = 0; for (i = 1; i <= NF; ++i) if ($i == col) c = i; next }
    c > 0 && $c != "" { print $c }' "$@" | sort -g | awk '{ v[NR] = $1 } END {
      if (NR == 0) { print "nan"; exit } print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# study label flags...: one row per layout
row() {
  local label=$1 bin=$2
  shift 2
  local base="$out/$label"
  "$build/experiments/$bin" "$@" --threads 1 --quiet --out "$base-np1-t1" >/dev/null 2>&1
  "$build/experiments/$bin" "$@" --threads 2 --quiet --out "$base-np1-t2" >/dev/null 2>&1
  "$mpirun" -np 2 --oversubscribe --bind-to none "$build/experiments/$bin" "$@" --threads 1 --quiet \
    --out "$base-np2-t1" >/dev/null 2>&1
  local t1 t2 n2 c2
  t1=$(median_col step_ms "$base"-np1-t1/*/lambda_*/metrics.csv)
  t2=$(median_col step_ms "$base"-np1-t2/*/lambda_*/metrics.csv)
  n2=$(median_col step_ms "$base"-np2-t1/*/lambda_*/metrics.csv)
  c2=$(median_col comm_ms "$base"-np2-t1/*/lambda_*/metrics.csv)
  awk -v l="$label" -v t1="$t1" -v t2="$t2" -v n2="$n2" -v c2="$c2" 'BEGIN {
    printf "| %s | %.2f | %.2f | %.2f | %.2f (%.0f %%) | %.2f | %.2f |\n", l, t1, t2, n2, c2, 100 * c2 / n2, t1 / n2, t2 / n2 }'
}

echo "| step (bloop, global batch as given) | 1 process, 1 thread (ms) | 1 process, 2 threads (ms) | 2 ranks × 1 thread (ms) | of which in collectives (ms) | speed-up vs 1×1 | vs 1×2 |"
echo "|---|---|---|---|---|---|---|"
common=(--methods bloop --lambdas 0.1)
row "smooth MLP 784-256-128-10, b256" scalpel-smooth-mlp "${common[@]}" --steps 200 --eval-every 50 \
  --batch-size 256 --train-size 20000 --test-size 1000 --eval-train-size 1000
row "two-head ResNet-18 w16, b32" scalpel-multitask "${common[@]}" --steps 24 --eval-every 8 --batch-size 32 \
  --width 16 --train-size 2048 --test-size 256 --eval-train-size 256
row "ByteLM 2 layers d128, T128 b16" scalpel-joint-lm "${common[@]}" --steps 40 --eval-every 20 --batch-size 16 \
  --layers 2 --d-model 128 --heads 4 --seq-len 128
