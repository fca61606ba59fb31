# Scalpel's entry points. `make test` and `make demo` work on a fresh Debian 12 machine: they run
# scripts/bootstrap.sh first when a required package is missing.
BUILD    ?= build
# OpenMP threads sleep instead of spinning while they wait (unless you set it yourself): on a
# loaded or shared machine, spinning threads starve the ones doing work (measured: 5-9x slower
# training steps under load). See README, "Threads".
export OMP_WAIT_POLICY ?= PASSIVE
JOBS     ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all bootstrap configure build test bench bench-compare bench-dist demo sanitize fuzz install docs clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh --check >/dev/null 2>&1 || bash scripts/bootstrap.sh

configure: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	cmake --build $(BUILD) -j$(JOBS)

# Release build with assertions, then the whole suite.
test: build
	rm -rf $(BUILD)/test-tmp && mkdir -p $(BUILD)/test-tmp
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The main job: the smooth-MLP sweep (mixed, pcgrad, dynamic-barrier, bloop x 5 lambdas) on MNIST
# when data/mnist holds it, else on the built-in synthetic-digits. Prints the hypervolume table
# and where the Pareto plots and report are. DEMO_FLAGS adds flags (e.g. DEMO_FLAGS=--threads=1).
DEMO_OUT ?= runs/demo
DEMO_FLAGS ?=
demo: build
	$(BUILD)/experiments/scalpel-smooth-mlp --preset cpu --out $(DEMO_OUT) $(DEMO_FLAGS)

# Scalpel and PyTorch side by side on the reference training steps (bench/compare_steps.cpp): one
# table of ms per step, ratio, fraction of the FMA and sgemm peaks, peak RSS. Without Debian's
# python3-torch it prints Scalpel's side and says how to get the other. COMPARE_FLAGS adds flags,
# e.g. COMPARE_FLAGS="--threads 1 --rounds 5".
COMPARE_FLAGS ?=
bench-compare: build
	$(BUILD)/bench/compare_steps $(COMPARE_FLAGS)

# Data-parallel scaling: one process against mpirun -np 2 on this machine (scripts/dist-scaling.sh).
bench-dist: build
	bash scripts/dist-scaling.sh $(BUILD) runs/dist-scaling

# Installs headers, libraries, binaries, the CMake package and scalpel.pc under PREFIX.
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# API reference (Doxygen, HTML in $(BUILD)/docs/html) from the public headers' comments; fails on
# any Doxygen warning.
docs:
	@command -v doxygen >/dev/null 2>&1 || bash scripts/bootstrap.sh --docs
	bash scripts/make-docs.sh $(BUILD)/docs

# Google Benchmark suite; figures are relative to the sgemm peak measured in the same run.
bench: build
	bash scripts/run-bench.sh $(BUILD)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer, at -O1 (assertions on): on 2
# cores 10.6 min of compiling and 3.5 min of tests, against about 15 + 2 at -O3.
sanitize: bootstrap
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DSCALPEL_OPT=-O1 -DSCALPEL_SANITIZE=address,undefined -DSCALPEL_BUILD_BENCH=OFF >/dev/null
	cmake --build build-asan -j$(JOBS)
	rm -rf build-asan/test-tmp && mkdir -p build-asan/test-tmp
	cd build-asan && ctest --output-on-failure -j$(JOBS)

# libFuzzer runs under ASan + UBSan, built with clang in build-fuzz: the idx / CIFAR / gzip parsers,
# the image decoder, the text loader, the checkpoint reader and the config/flag parser. Each target
# runs FUZZ_SECONDS from its seed corpus (scripts/run-fuzz.sh); findings go to build-fuzz/findings,
# one summary line per target to build-fuzz/fuzz-summary.txt.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= fuzz_parsers fuzz_image fuzz_text fuzz_state_dict fuzz_config
fuzz:
	@command -v clang++ >/dev/null 2>&1 || bash scripts/bootstrap.sh --fuzz
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DSCALPEL_FUZZ=ON \
		-DSCALPEL_BUILD_TESTS=OFF -DSCALPEL_BUILD_BENCH=OFF >/dev/null
	cmake --build build-fuzz -j$(JOBS) --target $(FUZZ_TARGETS)
	bash scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) build-asan build-fuzz
