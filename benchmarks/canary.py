"""Canary releases on real pods behind Traefik, judged by the real Prometheus.

One RagSystem (1 API pod, managed Postgres, an HTTPRoute on the local Gateway, analysis
every 10 s against the local Prometheus), client queries through the Gateway at 10/s:

- a healthy canary 0.1.0 -> 0.2.0: ``healthy_promotion_s``, seconds from the new version to
  Promoting, against ``configured_pause_s``, the sum of the steps' pauses (the same-run
  baseline: the least any analysis could take), and their ratio; ``observed_share_by_step``:
  for each step, the weight set and the share of the clients' requests that the canary's
  pods answered (from Traefik's access log);
- a faulty canary (its answers fail with 503) 0.2.0 -> 0.3.0-faulty: ``fault_to_weight_zero_s``,
  seconds from the canary taking traffic to a route without it (aim <= 25 s at a 10 s
  interval; the interval is the baseline, with the ratio), and
  ``requests_to_faulty_after_detection``: client requests answered by the canary's pods
  after the operator set its weight to 0 (aim 0);
- the same for a slow canary (answers 1.5 s late, none failing; the p95 rule) and one that
  retrieves worse (keyword-only; the quality gate on the golden set): ``by_fault`` holds
  each one's figures, with the worst time and the total of late requests beside them.

Run: ``make bench-canary`` (``ARGS=--quick``: two short steps and a 5 s bake; the pods'
start, a minute or two, dominates either way).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import run
from hack import canary_lab as lab
from hack import cluster as local_cluster
from hack.demo import operator_process
from hack.paths import REPO_ROOT
from rag_operator.models.rollout import duration_seconds

INTERVAL_S = 10


def route_canary_weight(c: local_cluster.Cluster, ns: str) -> int:
    route = lab.get(c, ns, "httproute", f"{lab.NAME}-api")
    for ref in (route.get("spec") or {}).get("rules", [{}])[0].get("backendRefs") or []:
        if ref.get("name") == f"{lab.NAME}-canary":
            return int(ref.get("weight", 1))
    return 0


def healthy(c: local_cluster.Cluster, ns: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    traffic = lab.Traffic(c, ns, rate=10)
    traffic.start()
    spans: list[tuple[int, float, float]] = []  # (weight, from, to) in time.time()
    ips: set[str] = set()
    try:
        t0 = time.monotonic()
        lab.set_version(c, ns, "0.2.0")
        weight, since = 0, time.time()
        phase = ""
        while phase != "Promoting":
            if time.monotonic() - t0 > 900:
                raise TimeoutError("the healthy canary was not promoted in 900 s")
            st = lab.rollout(c, ns)
            phase = str(st.get("phase", ""))
            now_weight = route_canary_weight(c, ns)
            ips |= lab.canary_ips(c, ns)
            if now_weight != weight:
                if weight:
                    spans.append((weight, since, time.time()))
                weight, since = now_weight, time.time()
            time.sleep(0.25)
        promotion_s = time.monotonic() - t0
        if weight:
            spans.append((weight, since, time.time()))
        lab.wait(lambda: lab.rollout(c, ns).get("phase") == "Succeeded", 600, "the bake")
    finally:
        traffic.stop()
    pods = lab.answered_by(c, ns)
    shares: list[dict[str, Any]] = []
    for weight, start, end in spans:
        # Leave out the second around each change (Traefik applies weights within 0.2 s).
        sent = [s for s in traffic.sent if start + 1 <= s.at <= end - 0.5 and s.seq in pods]
        canary = sum(1 for s in sent if pods[s.seq].split(":")[0] in ips)
        shares.append(
            {
                "weight": weight,
                "requests": len(sent),
                "observed_share": round(100 * canary / len(sent), 1) if sent else None,
            }
        )
    pause_s = sum(duration_seconds(str(s.get("pause", "0s"))) for s in steps)
    return {
        "healthy_promotion_s": round(promotion_s, 1),
        "configured_pause_s": pause_s,
        "healthy_promotion_ratio": round(promotion_s / pause_s, 2) if pause_s else None,
        "observed_share_by_step": shares,
    }


# Each fault: the version whose image has it, and what the analysis is given to see it.
FAULTS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "errors": ("0.3.0-faulty", None),
    "latency": ("0.4.0-slow", {"latencyP95": {"maxSeconds": 1.0, "maxRatioToStable": 3}}),
    "quality": (
        "0.5.0-worse",
        {"latencyP95": None, "qualityGate": {"goldenSetRef": {"name": lab.GOLDEN}}},
    ),
}


def faulty(c: local_cluster.Cluster, ns: str, fault: str) -> dict[str, Any]:
    """One faulty canary, from its first requests to weight 0 and after."""
    version, analysis = FAULTS[fault]
    traffic = lab.Traffic(c, ns, rate=10)
    traffic.start()
    try:
        lab.set_version(c, ns, version, analysis=analysis)
        lab.wait(lambda: route_canary_weight(c, ns) > 0, 900, f"the {fault} canary taking traffic")
        live = time.time()
        ips = lab.canary_ips(c, ns)
        lab.wait(lambda: route_canary_weight(c, ns) == 0, 300, "weight 0", every=0.1)
        zero = time.time()
        lab.wait(lambda: lab.rollout(c, ns).get("phase") == "RolledBack", 60, "RolledBack")
        time.sleep(15)
    finally:
        traffic.stop()
    pods = lab.answered_by(c, ns)
    after = [s for s in traffic.sent if s.sent_at > zero and s.seq in pods]
    to_faulty = sum(1 for s in after if pods[s.seq].split(":")[0] in ips)
    return {
        "fault_to_weight_zero_s": round(zero - live, 1),
        "fault_to_weight_zero_ratio_to_interval": round((zero - live) / INTERVAL_S, 2),
        "requests_to_faulty_after_detection": to_faulty,
        "requests_after_detection": len(after),
        "failed_client_requests": sum(1 for s in traffic.sent if s.status != 200),
        "rollback_message": lab.rollout(c, ns).get("message", ""),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two short steps, a short bake")
    args = parser.parse_args()
    if args.quick:
        steps = [{"weight": 20, "pause": "10s"}, {"weight": 50, "pause": "10s"}]
        bake = "5s"
    else:
        steps = [{"weight": w, "pause": "20s"} for w in (10, 30, 60)]
        bake = "20s"
    state = Path(tempfile.mkdtemp(prefix="ragops-bench-canary-"))
    c = local_cluster.up(state, timeout=240, data_plane=True)
    try:
        assert c.prometheus_url is not None
        c.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
        c.kubectl("wait", "--for=condition=Established", "crd/ragsystems.ragops.io")
        local_cluster.set_images(c, lab.faulty_images())
        ns = "bench-canary"
        local_cluster.real_namespace(c, ns)
        lab.wait(
            lambda: c.kubectl("get", "sa", "default", "-n", ns, check=False).returncode == 0,
            60,
            "the namespace's ServiceAccount",
        )
        rollout = lab.canary_spec(c.prometheus_url, steps, interval=f"{INTERVAL_S}s", bake=bake)
        # Canary pods load the embedding model; give them the time a loaded machine needs.
        os.environ.setdefault("RAGOPS_READY_TIMEOUT_SECONDS", "1200")
        with operator_process(c, state):
            c.kubectl("apply", "-f", "-", input=json.dumps(lab.rag_system(ns, "0.1.0", rollout)))
            lab.wait(lambda: lab.ready(c, ns), 600, "the system Ready")
            lab.seed(c, ns)
            result: dict[str, Any] = {
                "benchmark": "canary",
                "quick": args.quick,
                "interval_s": INTERVAL_S,
                "steps": steps,
                "bake": bake,
            }
            result.update(healthy(c, ns, steps))
            c.kubectl("apply", "-f", "-", input=json.dumps(lab.golden_set(ns)))
            by_fault = {fault: faulty(c, ns, fault) for fault in FAULTS}
            result.update(by_fault["errors"])  # the headline figures: answers that fail
            result["by_fault"] = by_fault
            result["fault_to_weight_zero_s_max"] = max(
                f["fault_to_weight_zero_s"] for f in by_fault.values()
            )
            result["requests_to_faulty_after_detection_total"] = sum(
                f["requests_to_faulty_after_detection"] for f in by_fault.values()
            )
    finally:
        local_cluster.down(state)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    run(main)
