#!/usr/bin/env bash
# `make fuzz` (not part of `make test`): fuzzes the C ABI's argument handling with cargo-fuzz
# (libFuzzer + AddressSanitizer, nightly) for FUZZ_SECONDS seconds (default 60). The target is
# ffi-c/fuzz/fuzz_targets/c_abi.rs: every entry point with real and bogus descriptors, arbitrary
# options, counts, offsets, timeouts and NULL pointers; it fails on a crash, a panic, a hang
# (-timeout), a descriptor leak or a broken output contract.
#
#   FUZZ_SECONDS=600 bash ffi-c/scripts/fuzz.sh     or     make fuzz FUZZ_SECONDS=600
#   FUZZ_ARGS="-fork=1 -ignore_crashes=1"          extra libFuzzer flags (these: go on past a
#                                                   failure, collecting every failing input)
#
# The corpus is kept in target/fuzz/corpus/c_abi (so later runs start where this one stopped);
# a failing input is written to target/fuzz/artifacts/c_abi/ and replayed with
#   cargo +nightly fuzz run --fuzz-dir ffi-c/fuzz --target-dir target/fuzz -O -a c_abi <file>
# cargo-fuzz is installed from crates.io when missing (`cargo install cargo-fuzz --locked`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
SECS=${FUZZ_SECONDS:-60}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
TARGET_DIR=$ROOT/target/fuzz
CORPUS=$TARGET_DIR/corpus/c_abi
ARTIFACTS=$TARGET_DIR/artifacts/c_abi
LOG=$TARGET_DIR/c_abi.log

if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
    echo "fuzz: the $TOOLCHAIN toolchain is not installed (cargo-fuzz needs nightly)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "# installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

mkdir -p "$CORPUS" "$ARTIFACTS" "$TARGET_DIR/tmp"
# The target's scratch files (its disk-file descriptors) live here, removed afterwards.
export TMPDIR=$TARGET_DIR/tmp
before=$(find "$ARTIFACTS" -type f | wc -l)

echo "# building and fuzzing c_abi for $SECS s"
start=$SECONDS
set +e
# shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
cargo "+$TOOLCHAIN" fuzz run --fuzz-dir ffi-c/fuzz --target-dir "$TARGET_DIR" -O -a c_abi \
    "$CORPUS" -- -max_total_time="$SECS" -timeout=10 -max_len=1024 -rss_limit_mb=4096 \
    -artifact_prefix="$ARTIFACTS/" -print_final_stats=1 ${FUZZ_ARGS:-} 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
elapsed=$((SECONDS - start))
set -e
rm -rf "$TMPDIR"

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG" | awk '{s += $1} END {print s + 0}')
if [ "$runs" -eq 0 ]; then # -fork=N prints no final stats: its last "#N: cov: ..." line counts
    runs=$(sed -n 's/^#\([0-9][0-9]*\): cov:.*/\1/p' "$LOG" | tail -n 1)
    runs=${runs:-0}
fi
corpus=$(find "$CORPUS" -type f | wc -l)
crashes=$(($(find "$ARTIFACTS" -type f | wc -l) - before))
echo "fuzz: $runs executions in $elapsed s (build included), corpus $corpus inputs," \
    "$crashes new failing inputs (exit status $rc)"
if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    echo "fuzz: FAILED: see $LOG and $ARTIFACTS" >&2
    exit 1
fi
