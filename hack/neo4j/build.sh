#!/usr/bin/env bash
# Resolves the Neo4j harness jars from Maven Central and packs the launcher, once per version
# and launcher source. Output, never modified once `.complete` exists (running servers are safe):
#   $RAGOPS_CACHE/neo4j/<version>-<hash>/{lib/*.jar,launcher.jar,app.jsa,.complete}
# <hash> covers pom.xml, Launcher.java and this script (hack/services/neo4j.py computes it too).
# app.jsa is a class-data-sharing archive recorded from one training start: later JVMs map
# the already-parsed classes instead of loading ~10k classes from jars (faster start). It
# records absolute jar paths, so it is made in place.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${RAGOPS_CACHE:-$HOME/.cache/ragops}"
version="$(sed -n 's:.*<neo4j.version>\(.*\)</neo4j.version>.*:\1:p' "$here/pom.xml")"
hash="$(cat "$here/pom.xml" "$here/Launcher.java" "$here/build.sh" | sha256sum | cut -c1-12)"
out="$cache/neo4j/$version-$hash"
[[ -f "$out/.complete" ]] && exit 0

mkdir -p "$cache/neo4j"
exec 9>"$cache/neo4j/.lock"
flock 9
[[ -f "$out/.complete" ]] && exit 0
rm -rf "$out"
mkdir -p "$out/lib" "$out/classes"
echo "neo4j: resolving harness $version into $out"
mvn -q -B -Dstyle.color=never -f "$here/pom.xml" -Dmaven.repo.local="$cache/m2" \
    dependency:copy-dependencies -DoutputDirectory="$out/lib" -DincludeScope=runtime
javac -d "$out/classes" -cp "$out/lib/*" "$here/Launcher.java"
jar cf "$out/launcher.jar" -C "$out/classes" Launcher.class
rm -rf "$out/classes"

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
touch "$out/.complete"
echo "neo4j: ready in $out"
