#!/usr/bin/env bash
# Installs the build in BUILD into a temporary prefix, then builds the three out-of-tree examples
# (examples/custom_layer, custom_surgeon, custom_study) against it with find_package(Scalpel) and
# runs them, and compiles custom_layer once more through pkg-config (scalpel.pc). Run by `make
# test` (CTest: InstallAndExamples), so the install and the public API cannot rot.
#   scripts/test-install.sh BUILD [WORKDIR]
set -euo pipefail
build=${1:?usage: scripts/test-install.sh BUILD [WORKDIR]}
src=$(cd "$(dirname "$0")/.." && pwd)
work=${2:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work"
prefix="$work/prefix"
step() { echo "== $*"; }

step "install into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
for f in lib/cmake/Scalpel/ScalpelConfig.cmake lib/cmake/Scalpel/ScalpelConfigVersion.cmake lib/pkgconfig/scalpel.pc \
         include/scalpel/core/tensor.h include/scalpel/optim/surgery/surgeon.h bin/scalpel-smooth-mlp; do
  [ -e "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
for f in include/scalpel/core/kernels include/scalpel/core/ops/conv_internal.h; do
  [ ! -e "$prefix/$f" ] || { echo "internal header installed: $f"; exit 1; }
done

for ex in custom_layer custom_surgeon custom_study; do
  step "build examples/$ex against the installed package"
  cmake -S "$src/examples/$ex" -B "$work/$ex" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
    >"$work/$ex.configure.log" 2>&1 || { cat "$work/$ex.configure.log"; exit 1; }
  cmake --build "$work/$ex" -j"$(nproc)" >"$work/$ex.build.log" 2>&1 || { cat "$work/$ex.build.log"; exit 1; }
done

step "run custom_layer"
"$work/custom_layer/custom_layer"
step "run custom_surgeon: its check, then the bundled quadratics study with --methods mixed,norm-matched"
"$work/custom_surgeon/check_norm_matched"
"$work/custom_surgeon/quadratics-nm" --methods mixed,norm-matched --lambdas 0.1,1 --steps 30 --eval-every 10 \
  --threads 1 --quiet --out "$work/nm" >"$work/nm.log"
grep -q '"status": "done"' "$work/nm/norm-matched/lambda_1/summary.json" || { echo "norm-matched run not done"; exit 1; }
grep -q '"norm-matched"' "$work/nm/hypervolume.json" || { echo "norm-matched missing from the hypervolume"; exit 1; }
step "run custom_study: a sweep with fronts and plots"
"$work/custom_study/my-study" --steps 60 --eval-every 20 --threads 1 --quiet --out "$work/ms" >"$work/ms.log"
for f in front.csv hypervolume.json report.md mixed/lambda_1/metrics.csv bloop/lambda_10/summary.json; do
  [ -e "$work/ms/$f" ] || { echo "my-study did not write $f"; exit 1; }
done
if command -v gnuplot >/dev/null 2>&1; then
  [ -e "$work/ms/pareto_eval.png" ] || { echo "my-study did not plot"; exit 1; }
fi

step "pkg-config: compile custom_layer with scalpel.pc"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# shellcheck disable=SC2046
g++ -O2 "$src/examples/custom_layer/main.cpp" -o "$work/custom_layer_pc" $(pkg-config --cflags --libs scalpel)
"$work/custom_layer_pc" >/dev/null
echo "install and examples: OK ($work)"
