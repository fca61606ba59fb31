# Scalpel's entry points. `make test` and `make demo` work on a fresh Debian 12 machine: they run
# scripts/bootstrap.sh first when a required package is missing.
BUILD    ?= build
JOBS     ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all bootstrap configure build test bench demo sanitize fuzz clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh --check >/dev/null 2>&1 || bash scripts/bootstrap.sh

configure: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	cmake --build $(BUILD) -j$(JOBS)

# Release build with assertions, then the whole suite.
test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# Google Benchmark suite; figures are relative to the sgemm peak measured in the same run.
bench: build
	bash scripts/run-bench.sh $(BUILD)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
sanitize: bootstrap
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DSCALPEL_SANITIZE=address,undefined -DSCALPEL_BUILD_BENCH=OFF >/dev/null
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ctest --output-on-failure -j$(JOBS)

clean:
	rm -rf $(BUILD) build-asan build-fuzz
