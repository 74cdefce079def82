"""How quickly the local control plane starts, stops and runs a Deployment.

Figures:
- ``warm_start_s``: median seconds from ``hack.cluster.up`` to usable (API ready, default
  ServiceAccount present, both kwok nodes Ready), with the binaries already built;
- ``down_s``: median seconds for ``hack.cluster.down`` (every process stopped, state removed);
- ``deployment_available_s``: median seconds from applying a 3-replica Deployment to its
  ``Available`` condition;
- ``cold_build_s``: seconds spent building the binaries, present only when this run built them;
- ``cache_mb``: disk used by the binaries plus Go's module and build caches.

Aims: warm start < 15 s, down < 5 s, Deployment available < 5 s.
Run: ``make bench-cluster_start`` (``ARGS=--quick`` for a run of under a minute).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hack import cluster as local_cluster
from hack.paths import cache_dir

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 3
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: registry.invalid/web:1
"""


def dir_mb(path: Path) -> float:
    if not path.exists():
        return 0.0
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            continue
    return total / 1e6


def deployment_available(c: local_cluster.Cluster, name: str) -> float:
    start = time.monotonic()
    c.kubectl("apply", "-n", "default", "-f", "-", input=DEPLOYMENT.format(name=name))
    c.kubectl(
        "wait", "-n", "default", f"deployment/{name}", "--for=condition=Available", "--timeout=120s"
    )
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one start, two Deployments")
    parser.add_argument("--runs", type=int, default=None, help="cluster starts (default 5)")
    args = parser.parse_args()
    starts = args.runs or (1 if args.quick else 5)
    deployments = 2 if args.quick else 5

    _, cold_build_s = local_cluster.ensure_built()
    if cold_build_s is not None:
        print(f"built binaries in {cold_build_s:.0f}s", file=sys.stderr)

    start_s: list[float] = []
    down_s: list[float] = []
    deploy_s: list[float] = []
    for run in range(starts):
        state_dir = Path(tempfile.mkdtemp(prefix="ragops-bench-cluster-"))
        t0 = time.monotonic()
        c = local_cluster.up(state_dir)
        start_s.append(time.monotonic() - t0)
        print(f"start {run + 1}/{starts}: usable in {start_s[-1]:.2f}s", file=sys.stderr)
        try:
            if run == 0:
                for i in range(deployments):
                    deploy_s.append(deployment_available(c, f"bench-{i}"))
                    print(
                        f"  deployment {i + 1}: Available in {deploy_s[-1]:.2f}s", file=sys.stderr
                    )
        finally:
            t1 = time.monotonic()
            local_cluster.down(state_dir)
            down_s.append(time.monotonic() - t1)
        print(f"  down in {down_s[-1]:.2f}s", file=sys.stderr)

    cache = cache_dir()
    bin_mb = dir_mb(cache / "k8s")
    go_mb = dir_mb(cache / "go")
    result: dict[str, Any] = {
        "benchmark": "cluster_start",
        "quick": args.quick,
        "starts": starts,
        "deployments": deployments,
        "replicas": 3,
        "versions": local_cluster.versions(),
        "warm_start_s": round(statistics.median(start_s), 2),
        "warm_start_runs_s": [round(s, 2) for s in start_s],
        "down_s": round(statistics.median(down_s), 2),
        "deployment_available_s": round(statistics.median(deploy_s), 2),
        "deployment_available_runs_s": [round(s, 2) for s in deploy_s],
    }
    if cold_build_s is not None:
        result["cold_build_s"] = round(cold_build_s, 1)
    result["bin_mb"] = round(bin_mb, 1)
    result["go_cache_mb"] = round(go_mb, 1)
    result["cache_mb"] = round(bin_mb + go_mb, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
