#!/usr/bin/env bash
# The full kill -9 test of issue 15: SIGKILL a checkpointing sweep at KILLS (default 100) seeded
# random moments, resume it each time, and check that every checkpoint left behind loads and the
# final metrics equal an uninterrupted run's bit for bit. make test runs the same test with 6 kills.
# Usage: scripts/kill-test.sh [KILLS]   (after make build; BUILD selects the build folder)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
KILLS=${1:-100}
bin="$BUILD/tests/experiments/test_experiments"
if [ ! -x "$bin" ]; then
  echo "kill-test: $bin not found; run 'make build' first" >&2
  exit 2
fi
SCALPEL_KILLS="$KILLS" "$bin" --gtest_filter='KillTest.SigkillAtRandomMomentsThenResumeEqualsTheUninterruptedRun'
