#!/usr/bin/env bash
# Runs libFuzzer targets built in build-fuzz (make fuzz does the build), each for a fixed time,
# starting from its committed seed corpus, and appends one summary line per target to
# build-fuzz/fuzz-summary.txt: executions, seconds, corpus size, and findings (crash / leak /
# timeout / OOM artifacts written to build-fuzz/findings/). Exits 1 when any target found
# something.
#
#   scripts/run-fuzz.sh SECONDS TARGET...
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: scripts/run-fuzz.sh SECONDS TARGET... (targets: fuzz_parsers fuzz_image fuzz_text fuzz_state_dict fuzz_config)" >&2
  exit 2
fi
seconds=$1
shift
root=build-fuzz
mkdir -p "$root/findings"
status=0
for t in "$@"; do
  case "$t" in
    fuzz_parsers) seeds=data/fuzz/corpus ;;
    fuzz_image) seeds=data/fuzz/corpus-image ;;
    fuzz_text) seeds=data/fuzz/corpus-text ;;
    fuzz_state_dict) seeds=core/fuzz/corpus ;;
    fuzz_config) seeds=experiments/fuzz/corpus ;;
    *) echo "run-fuzz: unknown target '$t'" >&2; exit 2 ;;
  esac
  bin="$root/fuzz/$t"
  if [ ! -x "$bin" ]; then
    echo "run-fuzz: $bin not built (run make fuzz, or cmake --build $root --target $t)" >&2
    exit 2
  fi
  corpus="$root/corpus/$t"
  mkdir -p "$corpus"
  log="$root/$t.log"
  echo "run-fuzz: $t for ${seconds}s (seeds $seeds, corpus $corpus, log $log)"
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
    -artifact_prefix="$root/findings/$t-" "$corpus" "$seeds" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  found=$(ls "$root/findings" 2>/dev/null | grep -c "^$t-" || true)
  line="$(date -u +%FT%TZ) $t seconds=$seconds execs=${execs:-?} corpus=$(ls "$corpus" | wc -l) findings=$found exit=$rc"
  echo "$line" | tee -a "$root/fuzz-summary.txt"
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    status=1
    tail -30 "$log" >&2
  fi
done
exit $status
