#!/usr/bin/env bash
# Builds the HTML API reference with Doxygen (docs/Doxyfile) into OUT/html and fails, printing
# them, if Doxygen warned about anything.   scripts/make-docs.sh OUT
set -euo pipefail
out=${1:?usage: scripts/make-docs.sh OUT}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$src"
{ cat docs/Doxyfile; echo "OUTPUT_DIRECTORY = $out"; echo "WARN_LOGFILE = $out/warnings.log"; } | doxygen - >"$out/doxygen.log" 2>&1 ||
  { cat "$out/doxygen.log"; exit 1; }
if [ -s "$out/warnings.log" ]; then
  echo "doxygen: $(wc -l <"$out/warnings.log") warning line(s) (docs/Doxyfile, scripts/doxygen-filter.py):"
  head -50 "$out/warnings.log"
  exit 1
fi
echo "API reference: $out/html/index.html ($(find "$out/html" -name '*.html' | wc -l) pages, no warnings)"
