#!/usr/bin/env bash
# Installs libzcopy (shared and static), include/zcopy.h and a pkg-config file zcopy.pc.
#
#   ffi-c/scripts/install.sh PREFIX        (what `make install PREFIX=...` runs)
#
# Environment:
#   DESTDIR                 staging root prepended to every path (zcopy.pc still says PREFIX)
#   LIBDIR                  library directory (default PREFIX/lib)
#   ZCOPY_INSTALL_PROFILE   cargo profile to build and install: release (default) or debug
#   CARGO, CARGO_TARGET_DIR as for cargo
set -euo pipefail

PREFIX=${1:-${PREFIX:-/usr/local}}
case $PREFIX in
    /*) ;;
    *) PREFIX=$(cd "$PREFIX" 2>/dev/null && pwd || echo "$PWD/$PREFIX") ;;
esac
LIBDIR=${LIBDIR:-$PREFIX/lib}
INCLUDEDIR=$PREFIX/include
DESTDIR=${DESTDIR:-}
PROFILE=${ZCOPY_INSTALL_PROFILE:-release}
CARGO=${CARGO:-cargo}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac

case $PROFILE in
    release) (cd "$ROOT" && "$CARGO" build --release -p zcopy-ffi) ;;
    debug) (cd "$ROOT" && "$CARGO" build -p zcopy-ffi) ;;
    *) echo "install.sh: ZCOPY_INSTALL_PROFILE must be release or debug" >&2; exit 2 ;;
esac
BUILD=$TARGET_DIR/$PROFILE

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)

install -d "$DESTDIR$LIBDIR/pkgconfig" "$DESTDIR$INCLUDEDIR"
install -m 0755 "$BUILD/libzcopy.so" "$DESTDIR$LIBDIR/libzcopy.so"
install -m 0644 "$BUILD/libzcopy.a" "$DESTDIR$LIBDIR/libzcopy.a"
install -m 0644 "$ROOT/include/zcopy.h" "$DESTDIR$INCLUDEDIR/zcopy.h"

# Libs.private: what the Rust standard library in libzcopy.a needs on Linux
# (`rustc --print native-static-libs`); only used with `pkg-config --static`.
cat > "$DESTDIR$LIBDIR/pkgconfig/zcopy.pc" <<PC
prefix=$PREFIX
libdir=$LIBDIR
includedir=$INCLUDEDIR

Name: zcopy
Description: Zero-copy data transfer between file descriptors (sendfile, splice, copy_file_range, MSG_ZEROCOPY)
Version: $VERSION
Libs: -L\${libdir} -lzcopy
Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
Cflags: -I\${includedir}
PC

echo "installed zcopy $VERSION ($PROFILE) into $DESTDIR$PREFIX:"
echo "  $LIBDIR/libzcopy.so, $LIBDIR/libzcopy.a, $INCLUDEDIR/zcopy.h, $LIBDIR/pkgconfig/zcopy.pc"
