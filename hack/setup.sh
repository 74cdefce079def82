#!/usr/bin/env bash
# One-command setup for a fresh machine; fast no-op when everything is already there.
#   Debian packages (redis-server, prometheus, JDK, Maven, shellcheck, chromium, nftables), the uv-managed Python env
#   with all extras, the Neo4j harness jars, the S3Proxy jars (an S3-compatible server), the
#   Go-built checkers (actionlint, compose-go's validator, the Argo CD health harness) and the local Kubernetes binaries (from Go modules).
# Caches live under ~/.cache (uv, Maven, Go, binaries); nothing is written into git.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export RAGOPS_CACHE="${RAGOPS_CACHE:-$HOME/.cache/ragops}"
UV_VERSION="0.13.9"
# The machine's Go (>= 1.26, needed to build the local cluster) may live outside PATH.
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
    export PATH="$PATH:/usr/local/go/bin"
fi
log() { printf 'setup: %s\n' "$*"; }

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

install_debian_packages() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v prometheus >/dev/null || missing+=(prometheus)
    command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
    command -v mvn >/dev/null || missing+=(maven)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v shellcheck >/dev/null || missing+=(shellcheck)
    # The monitoring e2e draws the dashboard and screenshots it headless.
    command -v chromium >/dev/null || missing+=(chromium)
    # The node agent: network namespaces and veths (ip), container namespaces (nsenter).
    command -v ip >/dev/null || missing+=(iproute2)
    command -v nsenter >/dev/null || missing+=(util-linux)
    # ... and each real pod's NetworkPolicy rules (nft, inside its network namespace).
    command -v nft >/dev/null || missing+=(nftables)
    [[ ${#missing[@]} -eq 0 ]] && return
    log "installing Debian packages: ${missing[*]}"
    # Packaged daemons must not start (Prometheus would take 0.0.0.0:9090): block service
    # starts for the install, then stop anything that started anyway.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
        created_policy=1
    fi
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
    [[ $created_policy -eq 1 ]] && as_root rm -f "$policy"
    stop_packaged_daemons
}

stop_packaged_daemons() {
    # Only the distribution's own daemons: ours always run with an explicit config/port flag.
    for svc in prometheus prometheus-node-exporter redis-server; do
        as_root service "$svc" stop >/dev/null 2>&1 || true
    done
    local pid
    for pid in $(pgrep -x prometheus || true); do
        if ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- '--web.listen-address=127.0.0.1:'; then
            kill "$pid" 2>/dev/null || true
        fi
    done
}

install_python_env() {
    if ! command -v uv >/dev/null || [[ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]]; then
        log "installing uv $UV_VERSION"
        python3 -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
    fi
    uv sync --all-extras --frozen --quiet
    compile_bytecode
}

# Every Python process of the tests (runtime pods, the operator, CLI runs) imports torch,
# transformers and the Kubernetes client. Without bytecode on disk each one compiles all of
# that from source again (PYTHONDONTWRITEBYTECODE is common in CI and keeps Python from
# caching it): about 2.5 times the CPU of reading compiled files. Compile once per lock file;
# the project's own modules too (compileall skips what is up to date).
compile_bytecode() {
    local stamp
    stamp=".venv/.bytecode-$(sha256sum uv.lock | cut -c1-16)"
    if [[ ! -f "$stamp" ]]; then
        log "compiling the environment's bytecode"
        rm -f .venv/.bytecode-*
        .venv/bin/python -m compileall -q -j 0 .venv/lib/python*/site-packages >/dev/null || true
        touch "$stamp"
    fi
    .venv/bin/python -m compileall -q -j 0 rag_runtime rag_operator hack tests benchmarks >/dev/null
}

install_debian_packages
install_python_env
bash hack/neo4j/build.sh
bash hack/s3proxy/build.sh
bash hack/tools/build.sh
if [[ -f hack/k8s/build.sh ]]; then
    bash hack/k8s/build.sh
fi
# Gateway API and Prometheus Operator CRDs for the local cluster's data plane (Go modules).
.venv/bin/python -m hack.dataplane.crds fetch
