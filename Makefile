# fanout: the commands of the README. Every target installs missing Debian
# packages first (scripts/bootstrap), so each works on a fresh machine.

BUILD       ?= build
JOBS        ?= $(shell nproc)
CMAKE_FLAGS ?=
CLANG_FORMAT ?= clang-format-14
SOURCES = $(shell git ls-files --cached --others --exclude-standard '*.cc' '*.h' 2>/dev/null)

.PHONY: all bootstrap build test demo bench sim image dockerfile-image asan tsan thread-safety fuzz format check-format clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Unit and integration tests against the release build.
test: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

demo: build
	@$(BUILD)/bin/fanout demo

# The image fanout:latest, FROM scratch out of the binary just built (no
# registry needed); deploy/Dockerfile is the usual build for hosts with one.
image: build
	@deploy/build-image $(BUILD)/bin/fanout fanout:latest

# deploy/Dockerfile built and checked as fanout:dockerfile (its Debian base
# images made from Debian's archive where no registry answers).
dockerfile-image: bootstrap
	@deploy/check-dockerfile fanout:dockerfile

# The scheduler under the deterministic simulator: SIM_SEEDS seeded fault
# schedules at fault level SIM_FAULTS, on every core (sim/, fanout_sim --help).
SIM_SEEDS  ?= 1000
SIM_FAULTS ?= 2
SIM_FIRST  ?= 1
sim: build
	@$(BUILD)/bin/fanout_sim --seeds $(SIM_SEEDS) --first $(SIM_FIRST) --faults $(SIM_FAULTS) --threads 0

bench: build
	@$(BUILD)/bin/fanout_sim --seeds 300 --threads 1
	@$(BUILD)/bin/bench_dispatch
	@$(BUILD)/bin/bench_dispatch --concurrency 256 --skip-math --skip-sharing --runs 3
	@$(BUILD)/bin/bench_web
	@$(BUILD)/bin/bench_ledger
	@$(BUILD)/bin/bench_faults
	@$(BUILD)/bin/bench_exec
	@/usr/bin/python3 bench/call.py --fanout $(BUILD)/bin/fanout

# Sanitizer reports from every process (test binaries and the coordinators
# and workers they start) go to files; any file there fails the run.
ASAN_REPORTS = $(CURDIR)/build-asan/sanitizer-reports
TSAN_REPORTS = $(CURDIR)/build-tsan/sanitizer-reports

# Every test under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: bootstrap
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFANOUT_SANITIZE=address,undefined >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@rm -rf $(ASAN_REPORTS) && mkdir -p $(ASAN_REPORTS)
	@ASAN_OPTIONS=detect_leaks=1:log_path=$(ASAN_REPORTS)/asan \
	  UBSAN_OPTIONS=print_stacktrace=1:log_path=$(ASAN_REPORTS)/ubsan \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS) -LE deploy
	@scripts/check-sanitizer-reports $(ASAN_REPORTS)

# The threaded code (tests labelled tsan) under ThreadSanitizer.
tsan: bootstrap
	@cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFANOUT_SANITIZE=thread >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	@rm -rf $(TSAN_REPORTS) && mkdir -p $(TSAN_REPORTS)
	@TSAN_OPTIONS="second_deadlock_stack=1 suppressions=$(CURDIR)/tsan.supp log_path=$(TSAN_REPORTS)/tsan" \
	  ctest --test-dir build-tsan --output-on-failure -j $(JOBS) -L tsan
	@scripts/check-sanitizer-reports $(TSAN_REPORTS)

# clang's -Wthread-safety over the GUARDED_BY annotations (build only; the
# program and the simulator hold every library, the tests add none).
thread-safety: bootstrap
	@cmake -S . -B build-clang -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DFANOUT_THREAD_SAFETY=ON >/dev/null
	@cmake --build build-clang -j $(JOBS) --target fanout fanout_sim

# The libFuzzer targets (envelope decoder, ledger request handler, h1
# extractor), each for FUZZ_SECONDS from the corpus under fuzz/corpus/.
FUZZ_SECONDS ?= 30
fuzz: bootstrap
	@cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++-14 -DFANOUT_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target envelope_fuzz ledger_fuzz h1_fuzz authorized_fuzz
	@scripts/run-fuzzers build-fuzz $(FUZZ_SECONDS)

format:
	@$(CLANG_FORMAT) -i $(SOURCES)

check-format:
	@$(CLANG_FORMAT) --dry-run --Werror $(SOURCES)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-clang build-fuzz
