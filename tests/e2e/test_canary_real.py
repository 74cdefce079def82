"""Canary releases with everything real: operator, runtime pods, Traefik, Prometheus.

Aspects covered (in order, on one system):
- a healthy canary (0.1.0 -> 0.2.0) goes through every step: the HTTPRoute's weights are
  the steps' (20, then 50), the analysis passes on the metrics Prometheus scraped from the
  canary's pod, and it is promoted: stable runs 0.2.0, the canary is gone, Succeeded after
  the bake; clients through the Gateway get no error meanwhile;
- a faulty canary (an image whose answers fail with 503) is rolled back by the analysis:
  weight 0 (no canary backend on the route), the canary Deployment gone, RolledBack with the
  failing metric and its value in the message, a RolledBack Event; after that, clients get
  no response from the canary (none answered by its pods, none failed);
- the rolled-back version is not tried again while the spec stays as it is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from hack import canary_lab as lab
from hack.cluster import Cluster, install_crds, set_images
from hack.demo import operator_process
from tests.fixtures.cluster import namespace_for, wait_for

# Real pods load the embedding model: on a loaded 2-core machine a pod takes minutes.
pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(1800)]

STEPS = [{"weight": 20, "pause": "10s"}, {"weight": 50, "pause": "10s"}]
READY_TIMEOUT_S = 420
ROLLOUT_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def system(platform: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The operator running and a Ready system at 0.1.0 with one document, traffic flowing."""
    install_crds(platform)
    set_images(platform, lab.faulty_images())
    ns_iter = namespace_for(platform, "canary", real=True)
    ns = next(ns_iter)
    assert platform.prometheus_url is not None
    rollout = lab.canary_spec(platform.prometheus_url, STEPS, interval="5s")
    manifest = lab.rag_system(ns, "0.1.0", rollout)
    # A canary pod loads the embedding model: on a loaded machine that takes minutes, more
    # than the operator's default ready timeout (after which a canary rolls back).
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAGOPS_READY_TIMEOUT_SECONDS", "1200")
        with operator_process(platform, tmp_path_factory.mktemp("operator")):
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


def test_faulty_canary_is_rolled_back_and_never_answers_again(
    platform: Cluster, system: str
) -> None:
    ns = system
    traffic = lab.Traffic(platform, ns, rate=5)
    traffic.start()
    try:
        lab.set_version(platform, ns, "0.3.0-faulty")
        wait_for(
            lambda: _route_weights(platform, ns).get(f"{lab.NAME}-canary", 0) > 0,
            timeout=ROLLOUT_TIMEOUT_S,
            what="the faulty canary taking traffic",
        )
        canary_ips = lab.canary_ips(platform, ns)
        assert canary_ips
        wait_for(
            lambda: lab.rollout(platform, ns).get("phase") == "RolledBack",
            timeout=180,
            what="the faulty canary rolled back",
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
    assert st["canaryVersion"] == "0.3.0-faulty"
    assert st["stableVersion"] == "0.2.0"
    assert "error-rate" in st["message"], st["message"]
    assert _route_weights(platform, ns) == {f"{lab.NAME}-api": 1}
    events = lab.get(platform, ns, "events", "--field-selector", f"involvedObject.name={lab.NAME}")
    assert "RolledBack" in {e["reason"] for e in events.get("items") or []}
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
    # Not tried again while the spec stays the same.
    time.sleep(12)
    again = lab.rollout(platform, ns)
    assert again["phase"] == "RolledBack"
    assert not lab.get(platform, ns, "deployment", f"{lab.NAME}-canary")
