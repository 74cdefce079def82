"""CRDs of other projects that ragops creates objects of: Gateway API and the Prometheus Operator.

The CRD files come from the projects' own Go modules, fetched with ``go mod download`` into
``$RAGOPS_CACHE/go/mod`` (the module cache the cluster build uses), so they are the upstream
files of a pinned version and need nothing but the Go module proxy.

    python -m hack.crds_thirdparty install [BUNDLE ...]     apply them to $KUBECONFIG's cluster
    python -m hack.crds_thirdparty uninstall [BUNDLE ...]   delete them (and every object of them)
    python -m hack.crds_thirdparty files [BUNDLE ...]       print the CRD files

BUNDLE is ``gateway-api`` (the standard channel: HTTPRoute, Gateway, TLSRoute, ...) or
``prometheus-operator`` (ServiceMonitor and PrometheusRule); without one, both. Tests and
scripts call :func:`install` with a ``hack.cluster.Cluster``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hack.cluster import Cluster, bin_dir
from hack.paths import cache_dir


@dataclass(frozen=True)
class Bundle:
    """CRD files at a path inside one version of a Go module."""

    module: str
    version: str
    directory: str
    patterns: tuple[str, ...]


BUNDLES: dict[str, Bundle] = {
    "gateway-api": Bundle(
        "sigs.k8s.io/gateway-api", "v1.6.3", "config/crd/standard", ("gateway.networking.k8s.io_*",)
    ),
    "prometheus-operator": Bundle(
        "github.com/prometheus-operator/prometheus-operator",
        "v0.85.0",
        "example/prometheus-operator-crd",
        ("monitoring.coreos.com_servicemonitors", "monitoring.coreos.com_prometheusrules"),
    ),
}


class FetchError(RuntimeError):
    """A module could not be downloaded."""


def _go() -> str:
    found = shutil.which("go")
    if found is None and Path("/usr/local/go/bin/go").exists():
        found = "/usr/local/go/bin/go"
    if found is None:
        raise FetchError("go is not installed (needed to fetch CRDs from Go modules)")
    return found


def module_dir(module: str, version: str) -> Path:
    """The unpacked module in the cache, downloaded on first use."""
    env = dict(os.environ)
    env.setdefault("GOMODCACHE", str(cache_dir() / "go" / "mod"))
    env.setdefault("GOTOOLCHAIN", "local")
    env["GOFLAGS"] = "-mod=mod"
    proc = subprocess.run(
        [_go(), "mod", "download", "-json", f"{module}@{version}"],
        env=env,
        cwd=cache_dir() if cache_dir().is_dir() else None,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise FetchError(f"go mod download {module}@{version} failed: {proc.stdout}{proc.stderr}")
    info: dict[str, Any] = json.loads(proc.stdout)
    if info.get("Error") or not info.get("Dir"):
        raise FetchError(f"go mod download {module}@{version}: {info.get('Error', 'no Dir')}")
    return Path(info["Dir"])


def files(name: str) -> list[Path]:
    """The YAML files of one bundle."""
    bundle = BUNDLES[name]
    root = module_dir(bundle.module, bundle.version) / bundle.directory
    found = sorted(path for pattern in bundle.patterns for path in root.glob(f"{pattern}.yaml"))
    missing = [p for p in bundle.patterns if not any(root.glob(f"{p}.yaml"))]
    if missing:
        raise FetchError(f"no {', '.join(missing)}.yaml under {root}")
    return found


def crds(name: str) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of one bundle (other documents, e.g. admission
    policies shipped beside them, are left out)."""
    out: list[dict[str, Any]] = []
    for path in files(name):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                out.append(doc)
    return out


def crd_names(*names: str) -> list[str]:
    return [doc["metadata"]["name"] for name in names or tuple(BUNDLES) for doc in crds(name)]


def install(cluster: Cluster, *names: str, timeout_s: int = 120) -> list[str]:
    """Apply the bundles' CRDs (server-side: some are too large for the last-applied
    annotation) and wait until every one is Established; returns the CRD names."""
    chosen = names or tuple(BUNDLES)
    docs = [doc for name in chosen for doc in crds(name)]
    text = "\n---\n".join(json.dumps(doc) for doc in docs)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=text)
    crd_list = [f"crd/{doc['metadata']['name']}" for doc in docs]
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        *crd_list,
        f"--timeout={timeout_s}s",
        timeout=timeout_s + 30,
    )
    return [doc["metadata"]["name"] for doc in docs]


def uninstall(cluster: Cluster, *names: str, timeout_s: int = 120) -> None:
    """Delete the bundles' CRDs and wait until they are gone."""
    chosen = names or tuple(BUNDLES)
    crd_list = [f"crd/{n}" for n in crd_names(*chosen)]
    cluster.kubectl(
        "delete",
        "--ignore-not-found",
        "--wait=true",
        f"--timeout={timeout_s}s",
        *crd_list,
        timeout=timeout_s + 30,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.crds_thirdparty", description=__doc__)
    parser.add_argument("action", choices=("install", "uninstall", "files"))
    parser.add_argument("bundles", nargs="*", metavar="BUNDLE", help=", ".join(BUNDLES))
    args = parser.parse_args(argv)
    unknown = [name for name in args.bundles if name not in BUNDLES]
    if unknown:
        parser.error(f"unknown bundle {unknown[0]!r}; choose from {', '.join(BUNDLES)}")
    chosen = tuple(args.bundles) or tuple(BUNDLES)
    try:
        if args.action == "files":
            for name in chosen:
                print("\n".join(str(p) for p in files(name)))
            return 0
        kubeconfig = os.environ.get("KUBECONFIG")
        if not kubeconfig:
            print('KUBECONFIG is not set (eval "$(make -s cluster-env)")', file=sys.stderr)
            return 2
        cluster = Cluster(kubeconfig=Path(kubeconfig), server="", bin_dir=bin_dir())
        if args.action == "install":
            print("\n".join(install(cluster, *chosen)))
        else:
            uninstall(cluster, *chosen)
    except (FetchError, subprocess.CalledProcessError) as exc:
        print(f"crds_thirdparty: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
