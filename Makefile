# Thin wrapper: the real build is CMake. `make run` and `make test` are the two
# commands of the README; both install what is missing first (scripts/setup.sh).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60

.PHONY: all setup deps data build run test test-fast test-asan bench nightly nightly-baseline fuzz clean

all: build

setup:
	@bash scripts/setup.sh

deps:
	@bash scripts/setup.sh --no-data

data:
	@bash scripts/fetch-mnist.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: setup build
	./$(BUILD)/prunelab run experiments/seed.yaml

# every unit, integration and sanitizer test
test: setup build test-fast test-asan

# ctest shows a test's output only when it fails; the Criterion and CLI
# summaries of every test are printed from its log afterwards.
test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS); rc=$$?; \
	  grep -hE '^\[====\] Synthesis|^[0-9]+ passed, [0-9]+ failed' Testing/Temporary/LastTest.log; exit $$rc

test-asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPL_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		PL_SANITIZED=1 ctest --output-on-failure -j $(JOBS); rc=$$?; \
	  grep -hE '^\[====\] Synthesis|^[0-9]+ passed, [0-9]+ failed' Testing/Temporary/LastTest.log; exit $$rc

bench: setup build
	./$(BUILD)/prunelab bench

# The nightly regression: a fresh run of experiments/nightly.yaml, compared
# with the committed baseline (exit 1 on a regression). For cron or CI.
nightly: setup build
	rm -rf reports/nightly
	./$(BUILD)/prunelab run experiments/nightly.yaml --out reports/nightly --quiet
	./$(BUILD)/prunelab compare reports/baselines/nightly.csv reports/nightly/results.csv

# Replaces the committed baseline with the last nightly result. Commit it
# with a message that says why the numbers changed.
nightly-baseline:
	test -f reports/nightly/results.csv || { echo "run 'make nightly' first" >&2; exit 1; }
	mkdir -p reports/baselines
	cp reports/nightly/results.csv reports/baselines/nightly.csv

# libFuzzer harnesses (tests/fuzz/), FUZZ_SECONDS each; crashes land in fuzz-out/
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
