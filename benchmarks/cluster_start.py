"""How quickly the local cluster starts, stops, runs a Deployment and brings up a real system.

Figures:
- ``warm_start_s``: median seconds from ``hack.cluster.up`` to usable (API ready, default
  ServiceAccount present, the kwok nodes and the node agent's nodes Ready), with the binaries
  already built; ``warm_start_data_plane_s`` the same with Traefik, Prometheus and their CRDs;
- ``down_s``: median seconds for ``hack.cluster.down`` (every process stopped, namespaces,
  addresses and state removed);
- ``deployment_available_s``: median seconds from applying a 3-replica Deployment (kwok) to
  its ``Available`` condition;
- ``system_ready_s``: median seconds from applying a RagSystem (1 API, 1 worker, managed
  Postgres and Redis, an HTTPRoute on the Gateway) to its Ready condition, with real pods;
  ``system_ready_parts`` the median time from the apply to each part: every pod scheduled,
  each component's pod Ready (postgres, redis, api, worker), the RagSystem Ready;
- ``first_answer_s``: median seconds from the apply to the first cited answer through the
  Gateway; ``first_answer_parts``: Ready, first 200 from the API through Traefik, three
  documents ingested by the worker, the answer;
- baseline, measured in the same run: the same programs started directly as processes on
  loopback (``hack.services`` Postgres and Redis, ``rag-runtime serve`` and ``worker``), to
  ready (``direct_ready_s``) and to the first cited answer (``direct_first_answer_s``);
  ``system_ready_ratio`` and ``first_answer_ratio`` are the cluster's over the direct ones
  (the cost of scheduling, probes, pod sandboxes, DNS and the Gateway);
- ``cold_build_s``: seconds spent building the binaries, present only when this run built them;
- ``cache_mb``: disk used by the binaries plus Go's module and build caches.

Aims: warm start < 15 s, down < 5 s, Deployment available < 5 s, a system Ready < 90 s.
Run: ``make bench-cluster_start`` (``ARGS=--quick`` for a run of under a minute: the control
plane figures only, since a real system alone takes a minute or more to start).
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


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = runs[0].keys()
    return {k: round(statistics.median(r[k] for r in runs), 2) for k in keys}


def real_systems(count: int) -> dict[str, Any]:
    """``count`` RagSystems on real pods, each after a direct start of the same programs."""
    from benchmarks._realsystem import direct_run, platform, system_run

    systems: list[dict[str, float]] = []
    directs: list[dict[str, float]] = []
    with platform() as (c, start_s):
        for i in range(count):
            directs.append(direct_run())
            print(f"direct {i + 1}/{count}: {directs[-1]}", file=sys.stderr)
            systems.append(system_run(c, f"bench-{i}"))
            print(f"system {i + 1}/{count}: {systems[-1]}", file=sys.stderr)
    sys_parts, direct_parts = _medians(systems), _medians(directs)
    ready, answer = sys_parts["ragsystem_ready_s"], sys_parts["answered_s"]
    return {
        "systems": count,
        "warm_start_data_plane_s": round(start_s, 2),
        "system_ready_s": ready,
        "system_ready_parts": {
            k: v for k, v in sys_parts.items() if k not in ("routed_s", "ingested_s", "answered_s")
        },
        "system_ready_runs_s": [round(r["ragsystem_ready_s"], 2) for r in systems],
        "first_answer_s": answer,
        "first_answer_parts": {
            "ready_s": ready,
            "routed_s": sys_parts["routed_s"],
            "ingested_s": sys_parts["ingested_s"],
            "answered_s": answer,
        },
        "first_answer_runs_s": [round(r["answered_s"], 2) for r in systems],
        "direct_ready_s": direct_parts["api_ready_s"],
        "direct_first_answer_s": direct_parts["answered_s"],
        "system_ready_ratio": round(ready / direct_parts["api_ready_s"], 2),
        "first_answer_ratio": round(answer / direct_parts["answered_s"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one start, two Deployments")
    parser.add_argument("--runs", type=int, default=None, help="cluster starts (default 5)")
    parser.add_argument("--systems", type=int, default=3, help="RagSystems started (default 3)")
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

    system: dict[str, Any] = (
        {"system": "skipped in --quick (a real system takes a minute or more to start)"}
        if args.quick
        else real_systems(args.systems)
    )

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
    result.update(system)
    if cold_build_s is not None:
        result["cold_build_s"] = round(cold_build_s, 1)
    result["bin_mb"] = round(bin_mb, 1)
    result["go_cache_mb"] = round(go_mb, 1)
    result["cache_mb"] = round(bin_mb + go_mb, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
