#!/usr/bin/env bash
# `make java-test`: `mvn -B verify` (cargo build of zcopy-jni, the jar, JUnit 5 under
# -Xcheck:jni) on the machine's JDK 17, then again on the newest JDK installed under
# /usr/lib/jvm when that is a different one. Exits non-zero if either run fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jvm_root="${ZCOPY_JVM_ROOT:-/usr/lib/jvm}"

# The feature version ("17", "25") of a JDK home, from its `release` file.
feature() {
    sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null | head -n 1
}

# A JDK home with javac, for a feature version, or the newest one.
find_jdk() {
    local want="$1" best="" best_v=0 home v
    for home in "$jvm_root"/*; do
        [[ -x "$home/bin/javac" && ! -L "$home" ]] || continue
        v="$(feature "$home")"
        [[ -n "$v" ]] || continue
        if [[ "$want" == newest ]]; then
            if (( v > best_v )); then best="$home"; best_v="$v"; fi
        elif [[ "$v" == "$want" && -z "$best" ]]; then
            best="$home"
        fi
    done
    echo "$best"
}

run_on() {
    local home="$1"
    echo "=== zcopy Java tests on $(basename "$home") (JDK $(feature "$home")) ==="
    # The Maven build runs cargo and the tests; Surefire prints its summary ("Tests run: ...").
    JAVA_HOME="$home" PATH="$home/bin:$PATH" mvn -B -f "$here/pom.xml" verify
}

jdk17="$(find_jdk 17)"
if [[ -z "$jdk17" ]]; then
    # No JDK 17 under the usual root: use whatever `java` is on the PATH.
    jdk17="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
fi
newest="$(find_jdk newest)"

run_on "$jdk17"
if [[ -n "$newest" && "$(readlink -f "$newest")" != "$(readlink -f "$jdk17")" && "$(feature "$newest")" != "$(feature "$jdk17")" ]]; then
    run_on "$newest"
else
    echo "=== only one JDK installed ($(basename "$jdk17")): skipping the newest-JDK run ==="
fi
echo "zcopy Java tests: passed on every JDK run"
