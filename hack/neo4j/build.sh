#!/usr/bin/env bash
# Resolves the Neo4j harness jars from Maven Central and compiles the launcher, once per version.
# Output: $RAGOPS_CACHE/neo4j/<version>/{lib/*.jar,launcher.jar,app.jsa}
# app.jsa is a class-data-sharing archive recorded from one training start: later JVMs map
# the already-parsed classes instead of loading ~10k classes from jars (faster start).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${RAGOPS_CACHE:-$HOME/.cache/ragops}"
version="$(sed -n 's:.*<neo4j.version>\(.*\)</neo4j.version>.*:\1:p' "$here/pom.xml")"
out="$cache/neo4j/$version"
stamp="$out/.complete-$(cat "$here/pom.xml" "$here/Launcher.java" "$here/build.sh" | sha256sum | cut -c1-16)"
if [[ -f "$stamp" ]]; then
    exit 0
fi
echo "neo4j: resolving harness $version into $out"
rm -rf "$out"
mkdir -p "$out/lib" "$out/classes"
mvn -q -B -Dstyle.color=never -f "$here/pom.xml" -Dmaven.repo.local="$cache/m2" \
    dependency:copy-dependencies -DoutputDirectory="$out/lib" -DincludeScope=runtime
javac -d "$out/classes" -cp "$out/lib/*" "$here/Launcher.java"
jar cf "$out/launcher.jar" -C "$out/classes" Launcher.class

echo "neo4j: recording the class-data-sharing archive"
train="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
java -XX:ArchiveClassesAtExit="$out/app.jsa" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -cp "$out/launcher.jar:$out/lib/*" Launcher "$port" "$train/db" >"$train/log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    grep -q "ragops-neo4j ready" "$train/log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$train/log"; exit 1; }
    sleep 0.2
done
kill "$pid"
wait "$pid" || true
rm -rf "$train"
touch "$stamp"
echo "neo4j: ready in $out"
