# Thin wrapper over CMake + CTest. See README.md.
#   make               build build/clew and libclew (release with debug info)
#   make run           install missing Debian packages, build, start `clew serve`
#   make test          install deps, format check, lint, -O2 -Werror build, then an ASan+UBSan
#                      -Werror build running every test
#   make unit          the unit tests only (ASan+UBSan build)
#   make tsan          build with ThreadSanitizer and run the unit and integration tests
#   make check-format / make format / make lint
#   make fuzz          build libFuzzer targets with clang and run each for FUZZ_SECONDS
#   make bench         build and run the ingest benchmark
#   make store-bench   the embedded store end to end: ingest, bytes/span on disk, query latency
#   make soak          ASan build, then the kill -9 crash tests run long: the embedded store's
#                      (SOAK_KILLS kills, default 60, in about SOAK_SECONDS, default 600), then
#                      the same with tail sampling on (half as many kills in half the time)
#   make install       install headers, libraries, pkg-config file, CMake package, clew
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
SOAK_KILLS ?= 60
SOAK_SECONDS ?= 600
SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
ASAN_BUILD = cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCLEW_WERROR=ON \
	      -DCLEW_SANITIZE=address,undefined >/dev/null && cmake --build build-asan -j$(JOBS)

.PHONY: all deps run test release-check unit tsan check-format format lint fuzz bench store-bench soak clean install

all:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j$(JOBS)

deps:
	@bash scripts/install-deps.sh

run: deps all
	./build/clew serve $(ARGS)

test: deps check-format lint release-check
	$(ASAN_BUILD)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

# an optimised build with -Werror: -O2 finds warnings (maybe-uninitialized, format-truncation)
# that the -O0 sanitizer build does not
release-check:
	cmake -S . -B build-release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLEW_WERROR=ON \
	      -DCLEW_TESTS=OFF >/dev/null
	cmake --build build-release -j$(JOBS)

unit:
	$(ASAN_BUILD)
	cd build-asan && ctest --output-on-failure -j$(JOBS) -L unit

tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCLEW_WERROR=ON \
	      -DCLEW_SANITIZE=thread -DCLEW_BENCH=ON >/dev/null
	cmake --build build-tsan -j$(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	    ctest --output-on-failure -j$(JOBS) -L 'unit|integration' $(CTEST_ARGS)

check-format:
	@bad=$$(clang-format --dry-run $(SOURCES) 2>&1 | grep -c 'warning:' || true); \
	if [ "$$bad" != "0" ]; then clang-format --dry-run $(SOURCES) 2>&1 | head -40; \
	  echo "check-format: $$bad formatting differences; run 'make format'"; exit 1; fi; \
	echo "check-format: clean"

format:
	clang-format -i $(SOURCES)

lint:
	@bash scripts/lint.sh

fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCLEW_FUZZ=ON \
	      -DCLEW_SANITIZE=address,undefined -DCLEW_BENCH=OFF >/dev/null
	cmake --build build-fuzz -j$(JOBS)
	bash scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

bench: deps all
	bash bench/run.sh

store-bench: deps all
	BUILD_DIR=build bash bench/store_bench.sh

# the crash test of `make test` (tests/integration/test_crash_embedded.sh), long: it prints the
# kills, the traces and spans checked, and fails on any acknowledged span lost or changed
soak:
	$(ASAN_BUILD)
	CLEW_BIN=$(CURDIR)/build-asan/clew CLEW_SOURCE_DIR=$(CURDIR) CLEW_BUILD_DIR=$(CURDIR)/build-asan \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    CRASH_KILLS=$(SOAK_KILLS) CRASH_SECONDS=$(SOAK_SECONDS) \
	    bash tests/integration/test_crash_embedded.sh
	CLEW_BIN=$(CURDIR)/build-asan/clew CLEW_SOURCE_DIR=$(CURDIR) CLEW_BUILD_DIR=$(CURDIR)/build-asan \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    CRASH_KILLS=$$(( $(SOAK_KILLS) / 2 )) CRASH_SECONDS=$$(( $(SOAK_SECONDS) / 2 )) \
	    CRASH_TIMEOUT=$$(( $(SOAK_SECONDS) * 3 )) bash tests/integration/test_crash_sampling.sh

install: all
	cmake --install build

clean:
	rm -rf build build-asan build-fuzz build-tsan build-release
