#!/usr/bin/env bash
# The C checks of `make test` (`make c-test`):
#   1. build libzcopy (cargo build -p zcopy-ffi)
#   2. include/zcopy.h compiles as C11 and as C++ with -Wall -Wextra -Werror (-Wpedantic too),
#      and a C++ program links and runs against it
#   3. tests/c/test_zcopy.c, built with -std=c11 -Wall -Wextra -Werror, runs against libzcopy.so
#   4. the same under valgrind memcheck when valgrind is installed (leaks and invalid accesses
#      fail; the 3 GiB test is skipped there, it runs in step 3)
#   5. examples/c/http_file_server.c builds and serves a file, byte for byte
#   6. `make install PREFIX=tmp` (debug build), then the example builds with pkg-config, shared
#      and static, and serves again
# The last line is "N passed, N failed"; the exit status is non-zero when anything failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
CARGO=${CARGO:-cargo}
CC=${CC:-cc}
CXX=${CXX:-c++}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
LIB=$TARGET_DIR/debug
CFLAGS=(-std=c11 -Wall -Wextra -Werror -O2 -g)
OUT=$(mktemp -d "${TMPDIR:-/tmp}/zcopy-c-test.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

passed=0
failed=0

# step NAME COMMAND...: one check; its output is shown only when it fails.
step() {
    local name=$1
    shift
    if "$@" >"$OUT/step.log" 2>&1; then
        echo "ok - $name"
        passed=$((passed + 1))
    else
        echo "FAIL - $name"
        sed 's/^/    /' "$OUT/step.log"
        failed=$((failed + 1))
    fi
}

summary() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

# tests PROGRAM...: runs a test program and adds its "N passed, N failed" to ours.
tests() {
    local log=$OUT/tests.log
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local last
    last=$(tail -n 1 "$log")
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
        if [ "$rc" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ]; then
            echo "FAIL - $1 exited with status $rc"
            failed=$((failed + 1))
        fi
    else
        echo "FAIL - $1 did not finish (exit status $rc)"
        failed=$((failed + 1))
    fi
}

# serve_and_fetch SERVER_BINARY FILE: runs the example for two requests and checks both.
serve_and_fetch() {
    local bin=$1 file=$2 port="" i
    "$bin" -p 0 -n 3 "$file" >"$OUT/server.out" 2>"$OUT/server.err" &
    local pid=$!
    for i in $(seq 100); do
        port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$OUT/server.out")
        [ -n "$port" ] && break
        sleep 0.05
    done
    if [ -z "$port" ]; then
        echo "server did not start"; kill "$pid" 2>/dev/null; cat "$OUT/server.err"; return 1
    fi
    local size ok=0
    size=$(stat -c %s "$file")
    fetch() { # fetch REQUEST OUTPUT
        exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
        printf '%s' "$1" >&3
        cat <&3 >"$2"
        exec 3<&-
    }
    fetch $'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' "$OUT/resp" || ok=1
    head -c -"$size" "$OUT/resp" >"$OUT/resp.head"
    tail -c "$size" "$OUT/resp" >"$OUT/resp.body"
    grep -q $'^HTTP/1.0 200 OK\r$' "$OUT/resp.head" || { echo "no 200"; ok=1; }
    grep -q $'^Content-Length: '"$size"$'\r$' "$OUT/resp.head" || { echo "bad length"; ok=1; }
    [ "$(tail -c 4 "$OUT/resp.head" | od -An -tx1 | tr -d ' ')" = 0d0a0d0a ] || { echo "bad head"; ok=1; }
    cmp "$OUT/resp.body" "$file" || ok=1
    fetch $'GET /nope HTTP/1.0\r\n\r\n' "$OUT/resp404" || ok=1
    grep -q '^HTTP/1.0 404' "$OUT/resp404" || { echo "no 404"; ok=1; }
    fetch $'HEAD / HTTP/1.0\r\n\r\n' "$OUT/resphead" || ok=1
    grep -q $'^Content-Length: '"$size"$'\r$' "$OUT/resphead" || { echo "bad HEAD"; ok=1; }
    wait "$pid" || { echo "server exit status $?"; ok=1; }
    cat "$OUT/server.err"
    return $ok
}

echo "# building libzcopy"
if ! "$CARGO" build -p zcopy-ffi; then
    echo "FAIL - cargo build -p zcopy-ffi"
    failed=$((failed + 1))
    summary
fi
for f in libzcopy.so libzcopy.a; do
    [ -f "$LIB/$f" ] || { echo "FAIL - $LIB/$f missing"; failed=$((failed + 1)); summary; }
done

step "header compiles as C11" \
    "$CC" -std=c11 -Wall -Wextra -Werror -Wpedantic -fsyntax-only -x c include/zcopy.h
step "header compiles as C++" \
    "$CXX" -std=c++11 -Wall -Wextra -Werror -Wpedantic -fsyntax-only -x c++ include/zcopy.h
step "C++ program links and runs" bash -c '
    "$1" -std=c++11 -Wall -Wextra -Werror -Iinclude tests/c/header_cpp.cpp -L"$2" -lzcopy \
        -Wl,-rpath,"$2" -o "$3/header_cpp" && "$3/header_cpp"' _ "$CXX" "$LIB" "$OUT"

if ! "$CC" "${CFLAGS[@]}" -Iinclude tests/c/test_zcopy.c -L"$LIB" -lzcopy -Wl,-rpath,"$LIB" \
    -o "$OUT/test_zcopy"; then
    echo "FAIL - tests/c/test_zcopy.c does not compile"
    failed=$((failed + 1))
    summary
fi
step "test_zcopy links libzcopy.so" bash -c 'ldd "$1" | grep -q "libzcopy.so => $2/libzcopy.so"' \
    _ "$OUT/test_zcopy" "$LIB"
echo "# tests/c/test_zcopy"
tests "$OUT/test_zcopy"

if command -v valgrind >/dev/null 2>&1; then
    echo "# tests/c/test_zcopy under valgrind memcheck (ZCOPY_TEST_QUICK=1)"
    tests env ZCOPY_TEST_QUICK=1 valgrind --quiet --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
        "$OUT/test_zcopy"
else
    echo "# valgrind not installed: memcheck run skipped"
fi

head -c 3000000 /dev/urandom >"$OUT/payload.bin"
step "example builds" "$CC" "${CFLAGS[@]}" -Iinclude examples/c/http_file_server.c \
    -L"$LIB" -lzcopy -Wl,-rpath,"$LIB" -o "$OUT/http_file_server"
step "example serves a file" serve_and_fetch "$OUT/http_file_server" "$OUT/payload.bin"

PREFIX=$OUT/prefix
if command -v make >/dev/null 2>&1; then
    step "make install PREFIX=..." env ZCOPY_INSTALL_PROFILE=debug make -s install PREFIX="$PREFIX"
else
    step "install.sh PREFIX" env ZCOPY_INSTALL_PROFILE=debug bash ffi-c/scripts/install.sh "$PREFIX"
fi
if command -v pkg-config >/dev/null 2>&1; then
    export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
    step "pkg-config finds zcopy" bash -c '[ "$(pkg-config --modversion zcopy)" != "" ] &&
        pkg-config --cflags --libs zcopy'
    step "example builds with pkg-config (shared)" bash -c '
        "$1" -std=c11 -Wall -Wextra -Werror examples/c/http_file_server.c \
            $(pkg-config --cflags --libs zcopy) -Wl,-rpath,"$(pkg-config --variable=libdir zcopy)" \
            -o "$2/server_pc" && ldd "$2/server_pc" | grep -q "$3/lib/libzcopy.so"' \
        _ "$CC" "$OUT" "$PREFIX"
    step "installed example serves a file" serve_and_fetch "$OUT/server_pc" "$OUT/payload.bin"
    step "example builds with pkg-config (static)" bash -c '
        "$1" -std=c11 -Wall -Wextra -Werror examples/c/http_file_server.c \
            $(pkg-config --cflags zcopy) "$(pkg-config --variable=libdir zcopy)/libzcopy.a" \
            $(pkg-config --static --libs-only-l zcopy | sed "s/-lzcopy//") -o "$2/server_static" &&
        ! ldd "$2/server_static" | grep -q libzcopy' _ "$CC" "$OUT"
    step "static example serves a file" serve_and_fetch "$OUT/server_static" "$OUT/payload.bin"
    # A program built only from the installed header and pkg-config: the 3 GiB sparse file to
    # TCP, and the documented status and errno for every bad input.
    step "tests build with pkg-config only" bash -c '
        "$1" -std=c11 -Wall -Wextra -Werror tests/c/test_zcopy.c \
            $(pkg-config --cflags --libs zcopy) -Wl,-rpath,"$(pkg-config --variable=libdir zcopy)" \
            -o "$2/test_zcopy_pc"' _ "$CC" "$OUT"
    echo "# tests/c/test_zcopy built against the installed library"
    tests "$OUT/test_zcopy_pc" big_sparse_to_tcp transfer_errors relay_errors sender_errors \
        closed_peer_sigpipe
else
    echo "# pkg-config not installed: the pkg-config builds are skipped"
fi

summary
