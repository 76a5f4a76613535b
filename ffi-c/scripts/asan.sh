#!/usr/bin/env bash
# `make asan` (not part of `make test`): the Rust tests of zcopy-core and zcopy-ffi, then the C
# tests (tests/c/test_zcopy.c), under AddressSanitizer (with LeakSanitizer), built by the nightly
# toolchain into target/asan.
#
#   1. cargo +nightly test -p zcopy-core -p zcopy-ffi --target <host>, RUSTFLAGS=-Zsanitizer=address
#      (--target keeps build scripts and proc macros uninstrumented; with the rust-src component
#      installed, -Zbuild-std instruments the standard library too, otherwise std is used as
#      shipped: its own accesses are unchecked, but every allocation is still ASan's)
#   2. libzcopy.so built the same way
#   3. test_zcopy.c built with `cc -fsanitize=address` against that library and run: the
#      compiler's ASan runtime serves the Rust library's instrumentation (same ASan ABI)
#
# ASAN_TOOLCHAIN picks another toolchain than nightly; ASAN_OPTIONS is passed on (default:
# detect_leaks=1). ZCOPY_TEST_QUICK=1 skips the 3 GiB C test. The last line is
# "N passed, N failed"; the exit status is non-zero when anything failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TOOLCHAIN=${ASAN_TOOLCHAIN:-nightly}
CC=${CC:-cc}
export CARGO_TARGET_DIR=$ROOT/target/asan
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

passed=0
failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
fail() { echo "FAIL - $1"; failed=$((failed + 1)); }
summary() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

if ! HOST=$(rustc "+$TOOLCHAIN" -vV 2>/dev/null | sed -n 's/^host: //p') || [ -z "$HOST" ]; then
    fail "the $TOOLCHAIN toolchain is not installed (-Zsanitizer needs nightly)"
    summary
fi
SAN="-Zsanitizer=address"
export RUSTFLAGS="$SAN${RUSTFLAGS:+ $RUSTFLAGS}"
export RUSTDOCFLAGS="$SAN${RUSTDOCFLAGS:+ $RUSTDOCFLAGS}"
BUILD_STD=()
if rustup "+$TOOLCHAIN" component list --installed 2>/dev/null | grep -q '^rust-src'; then
    BUILD_STD=(-Zbuild-std)
    echo "# rust-src is installed: the standard library is instrumented too (-Zbuild-std)"
else
    echo "# rust-src is not installed: std as shipped (uninstrumented); allocations are ASan's"
fi

echo "# 1. cargo +$TOOLCHAIN test -p zcopy-core -p zcopy-ffi under AddressSanitizer"
if cargo "+$TOOLCHAIN" test "${BUILD_STD[@]}" --target "$HOST" -p zcopy-core -p zcopy-ffi; then
    ok "Rust tests of zcopy-core and zcopy-ffi under ASan"
else
    fail "Rust tests of zcopy-core and zcopy-ffi under ASan"
fi

echo "# 2. libzcopy.so with AddressSanitizer"
LIB=$CARGO_TARGET_DIR/$HOST/debug
if ! cargo "+$TOOLCHAIN" build "${BUILD_STD[@]}" --target "$HOST" -p zcopy-ffi ||
    [ ! -f "$LIB/libzcopy.so" ]; then
    fail "libzcopy.so built with ASan"
    summary
fi
ok "libzcopy.so built with ASan"

echo "# 3. tests/c/test_zcopy.c with -fsanitize=address against it"
OUT=$CARGO_TARGET_DIR/c
mkdir -p "$OUT"
if ! "$CC" -fsanitize=address -fno-omit-frame-pointer -std=c11 -Wall -Wextra -Werror -O1 -g \
    -Iinclude tests/c/test_zcopy.c -L"$LIB" -lzcopy -Wl,-rpath,"$LIB" -o "$OUT/test_zcopy"; then
    fail "test_zcopy.c builds with -fsanitize=address ($CC needs its ASan runtime, e.g. libasan)"
    summary
fi
"$OUT/test_zcopy" 2>&1 | tee "$OUT/test_zcopy.log"
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 0 ] && tail -n 1 "$OUT/test_zcopy.log" | grep -Eq '^[0-9]+ passed, 0 failed$'; then
    ok "C tests against the ASan libzcopy ($(tail -n 1 "$OUT/test_zcopy.log"))"
else
    fail "C tests against the ASan libzcopy (exit status $rc)"
fi
summary
