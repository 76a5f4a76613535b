#!/usr/bin/env bash
# Runs the Java benchmark by hand: builds the jar if needed (mvn package, tests skipped), then
# runs ZcopyBench.java with the source launcher. Arguments go to the benchmark.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
jar="$root/bindings-java/target/zcopy-0.1.0.jar"
if [[ ! -f "$jar" || -n "${ZCOPY_BENCH_REBUILD:-}" ]]; then
    mvn -B -q -f "$root/bindings-java/pom.xml" -DskipTests package
fi
exec java --enable-native-access=ALL-UNNAMED -Xmx2g -cp "$jar" "$root/bench/java/ZcopyBench.java" "$@"
