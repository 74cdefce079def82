"""Canary releases with everything real: operator, runtime pods, Traefik, Prometheus.

Aspects covered (in order, on one system):
- a healthy canary (0.1.0 -> 0.2.0) goes through every step: the HTTPRoute's weights are
  the steps' (20, then 50), the analysis passes on the metrics Prometheus scraped from the
  canary's pod, and it is promoted: stable runs 0.2.0, the canary is gone, Succeeded after
  the bake; clients through the Gateway get no error meanwhile, and the operator's probes
  (sent with the system's generated key) are answered 200, none refused;
- a faulty canary (an image whose answers fail with 503) is rolled back by the analysis:
  weight 0 (no canary backend on the route), the canary Deployment gone, RolledBack with the
  failing metric and its value in the message, a RolledBack Event; after that, clients get
  no response from the canary (none answered by its pods, none failed);
- the rolled-back version is not tried again while the spec stays as it is;
- a slow canary (every answer 1.5 s late from its generation provider, none failing) is
  rolled back on the p95 rule alone (at most 1.2 s, and 3 x stable's), the same way;
- a canary that retrieves worse (keyword-only: the golden set's questions, worded unlike
  their document, find nothing) is rolled back by the quality gate (nDCG@10 0 against
  stable's 1).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hack import canary_lab as lab
from hack.cluster import Cluster, install_crds, set_images
from tests.fixtures.cluster import (
    namespace_for,
    panels_on,
    scraped_operator,
    wait_for,
    wait_for_panel_data,
)

# Real pods load the embedding model: on a loaded 2-core machine a pod takes minutes.
pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(1800)]

STEPS = [{"weight": 20, "pause": "10s"}, {"weight": 50, "pause": "10s"}]
SLOW_S = 1.5  # how late the -slow release answers
READY_TIMEOUT_S = 420
ROLLOUT_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def system(platform: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The operator running and a Ready system at 0.1.0 with one document, traffic flowing."""
    install_crds(platform)
    set_images(platform, lab.faulty_images(delay_seconds=SLOW_S))
    ns_iter = namespace_for(platform, "canary", real=True)
    ns = next(ns_iter)
    assert platform.prometheus_url is not None
    rollout = lab.canary_spec(platform.prometheus_url, STEPS, interval="5s")
    manifest = lab.rag_system(ns, "0.1.0", rollout)
    # A canary pod loads the embedding model: on a loaded machine that takes minutes, more
    # than the operator's default ready timeout (after which a canary rolls back).
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAGOPS_READY_TIMEOUT_SECONDS", "1200")
        with scraped_operator(platform, tmp_path_factory.mktemp("operator")):
            platform.kubectl("apply", "-f", "-", input=json.dumps(manifest))
            wait_for(lambda: lab.ready(platform, ns), timeout=READY_TIMEOUT_S, what="Ready")
            lab.seed(platform, ns)
            yield ns
            platform.kubectl(
                "delete", "ragsystem", lab.NAME, "-n", ns, "--timeout=180s", check=False
            )
    next(ns_iter, None)


def _route_weights(platform: Cluster, ns: str) -> dict[str, int]:
    route = lab.get(platform, ns, "httproute", f"{lab.NAME}-api")
    refs = route["spec"]["rules"][0]["backendRefs"]
    return {r["name"]: int(r.get("weight", 1)) for r in refs}


def test_healthy_canary_is_promoted_through_every_step(platform: Cluster, system: str) -> None:
    ns = system
    traffic = lab.Traffic(platform, ns, rate=5)
    traffic.start()
    try:
        lab.set_version(platform, ns, "0.2.0")
        weights: set[int] = set()

        def succeeded() -> bool:
            weights.add(_route_weights(platform, ns).get(f"{lab.NAME}-canary", 0))
            st = lab.rollout(platform, ns)
            return st.get("phase") == "Succeeded" and st.get("stableVersion") == "0.2.0"

        wait_for(succeeded, timeout=ROLLOUT_TIMEOUT_S, what="the canary promoted and baked")
    finally:
        traffic.stop()
    assert {20, 50} <= weights, weights
    st = lab.rollout(platform, ns)
    assert any(run["result"] == "pass" for run in st["analysis"]), st
    passing = next(run for run in st["analysis"] if run["result"] == "pass")
    assert {m["metric"] for m in passing["measurements"]} >= {"requests", "error-rate"}
    api = lab.get(platform, ns, "deployment", f"{lab.NAME}-api")
    assert api["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0")
    wait_for(
        lambda: not lab.get(platform, ns, "deployment", f"{lab.NAME}-canary"),
        timeout=60,
        what="the canary Deployment removed",
    )
    assert _route_weights(platform, ns) == {f"{lab.NAME}-api": 1}
    failed = [s for s in traffic.sent if s.status != 200]
    assert traffic.sent
    assert not failed, failed[:5]
    # The operator's probes carry the system's key: answered, not refused with 401.
    probes = lab.probe_answers(platform, ns)
    assert probes.get("200", 0) > 0, probes
    assert set(probes) == {"200"}, probes
    # The dashboard's release panels show this release from the operator's scraped metrics.
    panels = wait_for_panel_data(
        platform, ns, lab.NAME, panels_on("ragops_operator_rollout_"), timeout=120
    )
    weight = next(p for p in panels if p.title == "Canary weight")
    assert max(v for series in weight.series for _, v in series.points) >= 50, weight.series
    # The status says Succeeded a scrape before Prometheus has the gauge: wait for it there.
    phases: set[str] = set()

    def phase_panel_shows_succeeded() -> bool:
        (panel,) = wait_for_panel_data(platform, ns, lab.NAME, {"Rollout phase"}, timeout=60)
        phases.update(series.legend for series in panel.series)
        return "Succeeded" in phases

    wait_for(phase_panel_shows_succeeded, timeout=120, what="Succeeded in the Rollout phase panel")
    assert "Succeeded" in phases, phases


def _rolled_back(platform: Cluster, ns: str, version: str, metric: str) -> dict[str, Any]:
    """Start a rollout of faulty `version` (its analysis already set), with traffic flowing;
    check the analysis rolls it back on `metric` and that clients then get no response
    from the canary (none answered by its pods, none failed). The final rollout status."""
    traffic = lab.Traffic(platform, ns, rate=5)
    traffic.start()
    try:
        wait_for(
            lambda: _route_weights(platform, ns).get(f"{lab.NAME}-canary", 0) > 0,
            timeout=ROLLOUT_TIMEOUT_S,
            what=f"the faulty canary {version} taking traffic",
        )
        canary_ips = lab.canary_ips(platform, ns)
        assert canary_ips
        wait_for(
            lambda: lab.rollout(platform, ns).get("phase") == "RolledBack",
            timeout=180,
            what=f"the faulty canary {version} rolled back",
        )
        rolled_back_at = time.time()
        # Requests sent once Traefik has the new weights (0.2 s) and the canary's in-flight
        # answers are done.
        time.sleep(5)
        after = rolled_back_at + 3
        wait_for(
            lambda: len(traffic.since(after)) >= 20, timeout=120, what="traffic after rollback"
        )
    finally:
        traffic.stop()
    st = lab.rollout(platform, ns)
    assert st["weight"] == 0
    assert st["canaryVersion"] == version
    assert st["stableVersion"] == "0.2.0"
    assert metric in st["message"], st["message"]
    assert _route_weights(platform, ns) == {f"{lab.NAME}-api": 1}
    wait_for(
        lambda: not lab.get(platform, ns, "deployment", f"{lab.NAME}-canary"),
        timeout=60,
        what="the canary scaled away",
    )
    late = traffic.since(after)
    assert all(s.status == 200 for s in late), [s for s in late if s.status != 200][:5]
    pods = lab.answered_by(platform, ns)
    by_canary = [s.seq for s in late if pods.get(s.seq, "").split(":")[0] in canary_ips]
    assert not by_canary
    assert sum(1 for s in late if s.seq in pods) >= len(late) // 2, "access log incomplete"
    return st


def _failing(st: dict[str, Any], metric: str) -> dict[str, Any]:
    """The failing measurement of `metric` in the last failed analysis run."""
    failed = [run for run in st["analysis"] if run["result"] == "fail"]
    assert failed, st["analysis"]
    found = [m for m in failed[-1]["measurements"] if m["metric"] == metric]
    assert found, failed[-1]
    assert found[0]["result"] == "fail", failed[-1]
    return dict(found[0])


def test_faulty_canary_is_rolled_back_and_never_answers_again(
    platform: Cluster, system: str
) -> None:
    ns = system
    lab.set_version(platform, ns, "0.3.0-faulty")
    _rolled_back(platform, ns, "0.3.0-faulty", "error-rate")
    events = lab.get(platform, ns, "events", "--field-selector", f"involvedObject.name={lab.NAME}")
    assert "RolledBack" in {e["reason"] for e in events.get("items") or []}
    # Not tried again while the spec stays the same.
    time.sleep(12)
    again = lab.rollout(platform, ns)
    assert again["phase"] == "RolledBack"
    assert again["canaryVersion"] == "0.3.0-faulty"
    assert not lab.get(platform, ns, "deployment", f"{lab.NAME}-canary")


def test_slow_canary_is_rolled_back_on_its_p95_alone(platform: Cluster, system: str) -> None:
    """Answers SLOW_S late, all of them 200: only the latency rule can see it."""
    ns = system
    latency = {"latencyP95": {"maxSeconds": 1.2, "maxRatioToStable": 3}}
    lab.set_version(platform, ns, "0.4.0-slow", analysis=latency)
    st = _rolled_back(platform, ns, "0.4.0-slow", "latency-p95")
    p95 = _failing(st, "latency-p95")
    assert float(p95["value"]) >= SLOW_S, p95  # the canary's p95, as Prometheus measured it
    errors = [
        m for run in st["analysis"] for m in run["measurements"] if m["metric"] == "error-rate"
    ]
    assert errors, st["analysis"]
    assert all(m["result"] == "pass" for m in errors), errors


def test_canary_that_retrieves_worse_is_rolled_back_by_the_quality_gate(
    platform: Cluster, system: str
) -> None:
    """Keyword-only retrieval: answers fine and fast, but the golden set's questions (worded
    unlike their document) find nothing on the canary while stable finds them."""
    ns = system
    platform.kubectl("apply", "-f", "-", input=json.dumps(lab.golden_set(ns)))
    gate = {"latencyP95": None, "qualityGate": {"goldenSetRef": {"name": lab.GOLDEN}}}
    lab.set_version(platform, ns, "0.5.0-worse", analysis=gate)
    st = _rolled_back(platform, ns, "0.5.0-worse", "ndcg@10")
    ndcg = _failing(st, "ndcg@10")
    assert float(ndcg["value"]) == 0.0, ndcg
    assert "stable's 1" in ndcg["limit"], ndcg
