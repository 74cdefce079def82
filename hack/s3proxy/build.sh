#!/usr/bin/env bash
# Resolves the S3Proxy jars from Maven Central, once per version and build inputs. Output,
# never modified once `.complete` exists (running servers are safe):
#   $RAGOPS_CACHE/s3proxy/<version>-<hash>/{lib/*.jar,.complete}
# <hash> covers pom.xml and this script (hack/services/s3.py computes it too).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${RAGOPS_CACHE:-$HOME/.cache/ragops}"
version="$(sed -n 's:.*<s3proxy.version>\(.*\)</s3proxy.version>.*:\1:p' "$here/pom.xml")"
hash="$(cat "$here/pom.xml" "$here/build.sh" | sha256sum | cut -c1-12)"
out="$cache/s3proxy/$version-$hash"
[[ -f "$out/.complete" ]] && exit 0

mkdir -p "$cache/s3proxy"
exec 9>"$cache/s3proxy/.lock"
flock 9
[[ -f "$out/.complete" ]] && exit 0
rm -rf "$out"
mkdir -p "$out/lib"
echo "s3proxy: resolving $version into $out"
mvn -q -B -Dstyle.color=never -f "$here/pom.xml" -Dmaven.repo.local="$cache/m2" \
    dependency:copy-dependencies -DoutputDirectory="$out/lib" -DincludeScope=runtime
touch "$out/.complete"
echo "s3proxy: ready in $out"
