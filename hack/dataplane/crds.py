"""Third-party CRDs, taken from their projects' own Go modules at pinned versions.

``go mod download`` puts each module in ``$RAGOPS_CACHE/go/mod`` (the module cache the
cluster build uses), once; the files are the upstream ones, unchanged:

- ``gateway-api``: ``sigs.k8s.io/gateway-api`` v1.6.3, ``config/crd/standard/`` (Gateway,
  GatewayClass, HTTPRoute, GRPCRoute, ReferenceGrant, BackendTLSPolicy, TLSRoute, ...);
- ``monitoring``: ``github.com/prometheus-operator/prometheus-operator`` v0.85.0,
  ``example/prometheus-operator-crd/`` (ServiceMonitor and PrometheusRule).

``python -m hack.dataplane.crds fetch`` downloads them (``make setup`` calls it); ``install``
and ``uninstall`` apply or delete them in $KUBECONFIG's cluster (tests call :func:`install`
and :func:`uninstall` with a ``hack.cluster.Cluster``).
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


class CrdError(RuntimeError):
    """A module could not be fetched, or holds no such file."""


@dataclass(frozen=True)
class Bundle:
    module: str
    version: str
    directory: str
    files: tuple[str, ...]  # glob patterns inside ``directory``


BUNDLES: dict[str, Bundle] = {
    "gateway-api": Bundle(
        "sigs.k8s.io/gateway-api",
        "v1.6.3",
        "config/crd/standard",
        ("gateway.networking.k8s.io_*.yaml",),
    ),
    "monitoring": Bundle(
        "github.com/prometheus-operator/prometheus-operator",
        "v0.85.0",
        "example/prometheus-operator-crd",
        (
            "monitoring.coreos.com_servicemonitors.yaml",
            "monitoring.coreos.com_prometheusrules.yaml",
        ),
    ),
}


def go_binary() -> str:
    found = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if found is None:
        raise CrdError("the go command is missing: it fetches the CRD modules (make setup)")
    return found


def module_dir(bundle: Bundle) -> Path:
    """The module's files in the cache (downloaded on first use)."""
    env = {
        **os.environ,
        "GOMODCACHE": str(cache_dir() / "go" / "mod"),
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
    }
    proc = subprocess.run(
        [go_binary(), "mod", "download", "-json", f"{bundle.module}@{bundle.version}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=Path.home(),
    )
    try:
        info: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        info = {}
    if proc.returncode != 0 or not info.get("Dir"):
        detail = info.get("Error") or proc.stderr.strip() or proc.stdout.strip()
        raise CrdError(f"go mod download {bundle.module}@{bundle.version} failed: {detail}")
    return Path(info["Dir"])


def bundle_files(name: str) -> list[Path]:
    bundle = BUNDLES[name]
    root = module_dir(bundle) / bundle.directory
    found = sorted(p for pattern in bundle.files for p in root.glob(pattern))
    if not found:
        raise CrdError(f"{bundle.module}@{bundle.version} has no {bundle.files} in {root}")
    return found


def crd_documents(*names: str) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of the bundles (admission policies shipped beside them,
    such as Gateway API's safe-upgrades policy, are left out)."""
    docs: list[dict[str, Any]] = []
    for name in names or tuple(BUNDLES):
        for path in bundle_files(name):
            for doc in yaml.safe_load_all(path.read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    docs.append(doc)
    return docs


def crd_names(*names: str) -> list[str]:
    return [doc["metadata"]["name"] for doc in crd_documents(*names)]


def install(cluster: Cluster, *names: str, timeout_s: int = 120) -> list[str]:
    """Apply the bundles' CRDs (server-side: some are too large for the last-applied
    annotation) and wait until every one is Established; returns the CRD names."""
    docs = crd_documents(*names)
    text = "\n---\n".join(json.dumps(doc) for doc in docs)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=text)
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        *(f"crd/{doc['metadata']['name']}" for doc in docs),
        f"--timeout={timeout_s}s",
        timeout=timeout_s + 30,
    )
    return [doc["metadata"]["name"] for doc in docs]


def uninstall(cluster: Cluster, *names: str, timeout_s: int = 120) -> None:
    """Delete the bundles' CRDs (and every object of them) and wait until they are gone."""
    cluster.kubectl(
        "delete",
        "--ignore-not-found",
        "--wait=true",
        f"--timeout={timeout_s}s",
        *(f"crd/{name}" for name in crd_names(*names)),
        timeout=timeout_s + 30,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.dataplane.crds", description=__doc__)
    parser.add_argument("action", choices=("fetch", "files", "install", "uninstall"))
    parser.add_argument("bundles", nargs="*", metavar="BUNDLE", help=", ".join(BUNDLES))
    args = parser.parse_args(argv)
    unknown = [name for name in args.bundles if name not in BUNDLES]
    if unknown:
        parser.error(f"unknown bundle {unknown[0]!r}; choose from {', '.join(BUNDLES)}")
    chosen = tuple(args.bundles) or tuple(BUNDLES)
    try:
        if args.action in ("fetch", "files"):
            for name in chosen:
                paths = bundle_files(name)
                if args.action == "files":
                    print("\n".join(str(p) for p in paths))
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
    except (CrdError, subprocess.CalledProcessError) as exc:
        print(f"crds: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
