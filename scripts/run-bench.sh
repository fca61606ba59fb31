#!/usr/bin/env bash
# Runs every Google Benchmark executable <build-dir>/bench/bench_* (what `make bench` calls),
# writes one JSON file per executable to <build-dir>/bench-results/<name>.json (plus the console
# output in <name>.log) and prints a summary table: median GFLOP/s or GB/s, the fraction of the
# raw sgemm peak (or memcpy bandwidth) measured in the same run, and the ratio to the raw reference.
#
# Usage: scripts/run-bench.sh [build-dir]          (default: build)
# Environment:
#   BENCH_FILTER=regex   only benchmarks whose name matches (Google Benchmark --benchmark_filter)
#   BENCH_QUICK=1        one repetition, short minimum time, 1024^3 peak: a smoke run (~1-2 min)
#   BENCH_REPS=n         repetitions (default 5; medians are reported)
#   BENCH_MIN_TIME=s     minimum seconds per repetition (default 0.2)
#   SCALPEL_THREADS=n    threads for OpenMP and OpenBLAS (default: OpenMP's, i.e. all cores)
#   SCALPEL_BENCH_CLOCK=cpu  with SCALPEL_THREADS=1: time by the thread's CPU clock, which other
#                        processes' load barely disturbs (default: wall clock)
#   SCALPEL_PEAK_N=n     square size of the reference sgemm (default 2048; 1024 in quick mode)
# OPENBLAS_CORETYPE and OMP_NUM_THREADS are passed through untouched and reported in each header;
# compare runs only under one and the same setting.
set -euo pipefail

build="${1:-build}"
bench_dir="$build/bench"
out_dir="$build/bench-results"
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ ! -d "$bench_dir" ]]; then
  echo "run-bench: no benchmark directory $bench_dir; build first (make build, or cmake --build $build)" >&2
  exit 2
fi
mapfile -t exes < <(find "$bench_dir" -maxdepth 1 -type f -name 'bench_*' -perm -u+x | sort)
if [[ ${#exes[@]} -eq 0 ]]; then
  echo "run-bench: no bench_* executables in $bench_dir (is SCALPEL_BUILD_BENCH on?)" >&2
  exit 2
fi

reps="${BENCH_REPS:-5}"
min_time="${BENCH_MIN_TIME:-0.2}"
if [[ "${BENCH_QUICK:-0}" == "1" ]]; then
  reps="${BENCH_REPS:-1}"
  min_time="${BENCH_MIN_TIME:-0.05}"
  export SCALPEL_PEAK_N="${SCALPEL_PEAK_N:-1024}"
fi
if ! [[ "$reps" =~ ^[1-9][0-9]*$ ]]; then
  echo "run-bench: BENCH_REPS must be a positive integer, found '$reps'" >&2
  exit 2
fi
if ! [[ "$min_time" =~ ^[0-9]*\.?[0-9]+$ ]]; then
  echo "run-bench: BENCH_MIN_TIME must be a number of seconds (e.g. 0.2), found '$min_time'" >&2
  exit 2
fi

flags=(--benchmark_repetitions="$reps" --benchmark_min_time="$min_time" --benchmark_out_format=json)
if [[ "$reps" -gt 1 ]]; then
  flags+=(--benchmark_report_aggregates_only=true)
fi
if [[ -n "${BENCH_FILTER:-}" ]]; then
  flags+=(--benchmark_filter="$BENCH_FILTER")
fi

python=python3
[[ -x /usr/bin/python3 ]] && python=/usr/bin/python3

mkdir -p "$out_dir"
echo "run-bench: ${#exes[@]} executable(s) from $bench_dir, repetitions=$reps, min_time=${min_time}s," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}, SCALPEL_THREADS=${SCALPEL_THREADS:-(default)}," \
     "clock=${SCALPEL_BENCH_CLOCK:-wall}," \
     "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
load1="$(cut -d' ' -f1 /proc/loadavg)"
cores="$(nproc)"
if awk -v l="$load1" -v c="$cores" 'BEGIN { exit !(l > 0.5 * c) }'; then
  echo "run-bench: warning: load average $load1 on $cores cores: other processes are running, so wall-clock" \
       "figures will be noisy. Trust the interleaved 'vs raw' ratios, or compare with" \
       "SCALPEL_THREADS=1 SCALPEL_BENCH_CLOCK=cpu; OMP_WAIT_POLICY=passive avoids spin-wait stalls" \
       "(docs/performance-notes.md)."
fi
failed=()
results=()
for exe in "${exes[@]}"; do
  name="$(basename "$exe")"
  json="$out_dir/$name.json"
  log="$out_dir/$name.log"
  rm -f "$json"  # never report a stale file from an earlier run
  start=$SECONDS
  echo "run-bench: $name ..."
  if "$exe" "${flags[@]}" --benchmark_out="$json" >"$log" 2>&1; then
    grep '^scalpel bench |' "$log" | sed 's/^/  /' || true
    if [[ -s "$json" ]] && grep -q '"run_name"' "$json"; then
      echo "  done in $((SECONDS - start)) s -> $json"
      results+=("$json")
    else
      echo "  no benchmark matched${BENCH_FILTER:+ BENCH_FILTER='$BENCH_FILTER'}"
    fi
  else
    rc=$?
    echo "run-bench: $name FAILED (exit $rc); last lines of $log:" >&2
    tail -n 15 "$log" >&2
    failed+=("$name")
  fi
done

echo
if [[ ${#results[@]} -gt 0 ]]; then
  "$python" "$script_dir/bench-report.py" "${results[@]}"
fi
echo "run-bench: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "run-bench: failed: ${failed[*]}" >&2
  exit 1
fi
