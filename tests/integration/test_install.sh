#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds examples/install-check against
# the installed libclew twice: with pkg-config, and as a CMake project with
# find_package(clew). Both programs must run and print "ok".
set -euo pipefail
: "${CLEW_BUILD_DIR:?}" "${CLEW_SOURCE_DIR:?}"
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
command -v pkg-config >/dev/null || fail "pkg-config not found; run scripts/install-deps.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

cmake --install "$CLEW_BUILD_DIR" --prefix "$prefix" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log"; fail "cmake --install failed"; }
for f in include/clew/clew.h include/clew/version.h include/clew/propagation.h; do
    [ -f "$prefix/$f" ] || fail "$f not installed"
done
libdir=$(dirname "$(find "$prefix" -name 'libclew.so' | head -1)")
[ -n "$libdir" ] && [ -f "$libdir/libclew.a" ] || fail "libclew.so and libclew.a not installed"
[ -f "$libdir/pkgconfig/clew.pc" ] || fail "clew.pc not installed"
[ -f "$libdir/cmake/clew/clewConfig.cmake" ] || fail "clewConfig.cmake not installed"
echo "ok - headers, shared and static libraries, clew.pc and the CMake package are installed"
if nm -D --defined-only "$libdir/libclew.so" | awk '{print $3}' | grep -v '^clew_' | grep -vE '^(_init|_fini|__bss_start|_edata|_end)$' | grep -q .; then
    nm -D --defined-only "$libdir/libclew.so" | awk '{print $3}' | grep -v '^clew_' | head >&2
    fail "libclew.so exports symbols without the clew_ prefix"
fi
echo "ok - libclew.so exports only clew_* symbols"

# the test build may be sanitized: the programs then need the sanitizer runtime, loaded
# through libclew.so's own dependency, which ASan accepts with this option
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:detect_leaks=0"
export LD_LIBRARY_PATH="$libdir"

export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -o "$work/pc_check" "$CLEW_SOURCE_DIR/examples/install-check/main.c" \
    $(pkg-config --cflags --libs clew) || fail "building against pkg-config's flags failed"
out=$("$work/pc_check") || fail "the pkg-config build did not run: $out"
echo "$out" | grep -q ' ok: ' || fail "unexpected output: $out"
echo "ok - pkg-config build runs: $out"

cmake -S "$CLEW_SOURCE_DIR/examples/install-check" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" \
    >"$work/cm.log" 2>&1 || { cat "$work/cm.log"; fail "find_package(clew) failed"; }
cmake --build "$work/cm" >"$work/cmb.log" 2>&1 || { cat "$work/cmb.log"; fail "CMake build failed"; }
out=$("$work/cm/install_check") || fail "the CMake build did not run: $out"
echo "$out" | grep -q ' ok: ' || fail "unexpected output: $out"
echo "ok - find_package(clew) build runs: $out"
echo "5 passed, 0 failed"
