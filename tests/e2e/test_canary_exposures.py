"""Canary traffic through the two other ways a system is reached, and the operator's and
Prometheus' failures, everything real (operator process, runtime pods, Traefik, Prometheus);
the Gateway's weighted HTTPRoute and the faults are test_canary_real's.

In order, on one system:
- exposed through an Ingress (class nginx, served by Traefik's nginx provider): a healthy
  canary gets the operator's canary Ingress (nginx canary annotations, `canary-weight` each
  step's weight, 30 then 60) beside the API's; clients through it are answered by the
  canary's pod in about that share. The operator is killed (SIGKILL) during the first step
  and started again: the rollout resumes, each step is taken once (one CanaryStep Event
  each), it is promoted, the canary Ingress goes away and no client request fails;
- not exposed (replica ratio): the system's exposure is removed and clients reach it through
  an Ingress of their own to the API Service. A canary's pods join that Service, so a faulty
  canary (answers fail with 503) answers some of those clients until the analysis rolls it
  back; once its pods have left the Service, no client is answered by them and none fails;
- Prometheus frozen (SIGSTOP: it accepts connections and answers nothing) after an analysis
  run passed: the rollout pauses, then rolls back after the failure limit, naming Prometheus
  unreachable; it is never promoted and stable keeps its version;
- a release that is fine as a canary and fails once promoted (-latent: its answers fail only
  in the stable Deployment's pods) passes the steps, is promoted, and the bake's analysis
  reverts stable to the last good version (RolledBack: "bake of ... failed, reverted to").
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hack import canary_lab as lab
from hack.cluster import Cluster, install_crds, set_images
from hack.dataplane.traefik import INGRESS_CLASS
from hack.demo import operator_process
from hack.services._process import ManagedProcess
from rag_operator.release.canary import NGINX_CANARY_WEIGHT
from tests.fixtures.cluster import namespace_for, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(1800)]

STEPS = [{"weight": 30, "pause": "15s"}, {"weight": 60, "pause": "15s"}]
READY_TIMEOUT_S = 420
ROLLOUT_TIMEOUT_S = 900
API = f"{lab.NAME}-api"
CANARY = f"{lab.NAME}-canary"
OWN_INGRESS = "clients-own"


@pytest.fixture(scope="module")
def operator(
    platform: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagedProcess]:
    install_crds(platform)
    set_images(platform, lab.faulty_images())
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAGOPS_READY_TIMEOUT_SECONDS", "1200")  # a loaded machine's pod start
        with operator_process(platform, tmp_path_factory.mktemp("operator")) as process:
            yield process


@pytest.fixture(scope="module")
def system(platform: Cluster, operator: ManagedProcess) -> Iterator[str]:
    """A Ready system at 0.1.0 behind an Ingress, with one document."""
    ns_iter = namespace_for(platform, "canary-ingress", real=True)
    ns = next(ns_iter)
    assert platform.prometheus_url is not None
    rollout = lab.canary_spec(platform.prometheus_url, STEPS, interval="5s")
    manifest = lab.rag_system(ns, "0.1.0", rollout, exposure=lab.ingress_exposure(ns))
    platform.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    wait_for(lambda: lab.ready(platform, ns), timeout=READY_TIMEOUT_S, what="Ready")
    lab.seed(platform, ns)
    yield ns
    platform.kubectl("delete", "ragsystem", lab.NAME, "-n", ns, "--timeout=180s", check=False)
    next(ns_iter, None)


def _kill_and_restart(process: ManagedProcess) -> None:
    """SIGKILL the operator (no cleanup, as when its node dies) and start it again."""
    assert process.popen is not None
    os.killpg(os.getpgid(process.popen.pid), signal.SIGKILL)
    process.popen.wait(timeout=30)
    process.start()
    port = process.argv[list(process.argv).index("--liveness-port") + 1]
    url = f"http://127.0.0.1:{port}/healthz"
    process.wait_ready(lambda: httpx.get(url, timeout=2).status_code == 200, timeout=60)


def _canary_weight(platform: Cluster, ns: str) -> int | None:
    """The canary Ingress' nginx canary-weight; None while there is no canary Ingress."""
    ingress = lab.get(platform, ns, "ingress", CANARY)
    annotations = (ingress.get("metadata") or {}).get("annotations") or {}
    weight = annotations.get(NGINX_CANARY_WEIGHT)
    return None if weight is None else int(weight)


def _answered_by_canary(
    platform: Cluster, ns: str, sent: list[lab.Sent], canary_ips: set[str]
) -> tuple[int, int]:
    """Of `sent`, how many the access log places, and how many of those a canary pod got."""
    pods = lab.answered_by(platform, ns)
    placed = [pods[s.seq].split(":")[0] for s in sent if s.seq in pods]
    return len(placed), sum(1 for ip in placed if ip in canary_ips)


def test_ingress_canary_gets_its_weights_and_survives_an_operator_kill(
    platform: Cluster, system: str, operator: ManagedProcess
) -> None:
    ns = system
    traffic = lab.Traffic(platform, ns, rate=5)
    traffic.start()
    seen: list[tuple[float, int]] = []  # (time, canary-weight) while the canary Ingress exists
    canary_ips: set[str] = set()
    killed = False
    try:
        lab.set_version(platform, ns, "0.2.0")

        def succeeded() -> bool:
            nonlocal killed
            weight = _canary_weight(platform, ns)
            if weight is not None:
                seen.append((time.time(), weight))
                canary_ips.update(lab.canary_ips(platform, ns))
                if not killed:
                    _kill_and_restart(operator)
                    killed = True
            st = lab.rollout(platform, ns)
            return st.get("phase") == "Succeeded" and st.get("stableVersion") == "0.2.0"

        wait_for(succeeded, timeout=ROLLOUT_TIMEOUT_S, what="the canary promoted and baked")
    finally:
        traffic.stop()
    assert killed
    assert list(dict.fromkeys(w for _, w in seen)) == [30, 60], seen
    assert canary_ips
    for weight in (30, 60):
        times = [t for t, w in seen if w == weight]
        during = [s for s in traffic.sent if times[0] + 1 <= s.sent_at <= times[-1]]
        placed, by_canary = _answered_by_canary(platform, ns, during, canary_ips)
        assert placed >= 15, (weight, placed, len(during))
        share = by_canary / placed
        assert abs(share - weight / 100) <= 0.2, (weight, by_canary, placed)
    events = lab.get(platform, ns, "events", "--field-selector", f"involvedObject.name={lab.NAME}")
    steps = [e for e in events.get("items") or [] if e["reason"] == "CanaryStep"]
    assert len(steps) == len(STEPS), [e["message"] for e in steps]
    assert all((e.get("count") or 1) == 1 for e in steps), "a step taken twice"
    assert _canary_weight(platform, ns) is None  # the canary Ingress is gone
    api = lab.get(platform, ns, "deployment", API)
    assert api["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0")
    failed = [s for s in traffic.sent if s.status != 200]
    assert traffic.sent
    assert not failed, failed[:5]


def _own_ingress(ns: str) -> dict[str, Any]:
    """The clients' own Ingress to the system's API Service (the system exposes nothing)."""
    path = {
        "path": "/",
        "pathType": "Prefix",
        "backend": {"service": {"name": API, "port": {"name": "http"}}},
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": OWN_INGRESS, "namespace": ns},
        "spec": {
            "ingressClassName": INGRESS_CLASS,
            "rules": [{"host": lab.host(ns), "http": {"paths": [path]}}],
        },
    }


def test_without_exposure_a_faulty_canary_shares_the_service_until_rolled_back(
    platform: Cluster, system: str
) -> None:
    ns = system
    platform.kubectl("apply", "-f", "-", input=json.dumps(_own_ingress(ns)))
    patch = {"spec": {"api": {"exposure": {"ingress": None}}}}
    platform.kubectl(
        "patch", "ragsystem", lab.NAME, "-n", ns, "--type=merge", "-p", json.dumps(patch)
    )
    wait_for(lambda: not lab.get(platform, ns, "ingress", API), timeout=60, what="exposure gone")
    with lab.client(platform, ns) as http:
        wait_for(
            lambda: http.get("/api/v1/ready").status_code == 200,
            timeout=60,
            what="the API through the clients' own Ingress",
        )
    traffic = lab.Traffic(platform, ns, rate=5)
    traffic.start()
    canary_ips: set[str] = set()
    try:
        lab.set_version(platform, ns, "0.3.0-faulty")

        def rolled_back() -> bool:
            canary_ips.update(lab.canary_ips(platform, ns))
            return lab.rollout(platform, ns).get("phase") == "RolledBack"

        wait_for(rolled_back, timeout=ROLLOUT_TIMEOUT_S, what="the faulty canary rolled back")
        wait_for(
            lambda: not lab.canary_ips(platform, ns),
            timeout=120,
            what="the canary's pods gone from the Service",
        )
        after = time.time() + 3  # Traefik's reload of the Service's endpoints
        wait_for(lambda: len(traffic.since(after)) >= 20, timeout=120, what="traffic after")
    finally:
        traffic.stop()
    st = lab.rollout(platform, ns)
    assert st["canaryVersion"] == "0.3.0-faulty"
    assert st["stableVersion"] == "0.2.0"
    assert "error-rate" in st["message"], st["message"]
    assert not lab.get(platform, ns, "deployment", CANARY)
    assert canary_ips
    # While it ran, the canary's pod answered clients of the Service: the replica ratio is real.
    before = [s for s in traffic.sent if s.at < after - 3]
    placed, by_canary = _answered_by_canary(platform, ns, before, canary_ips)
    assert by_canary > 0, (by_canary, placed)
    late = traffic.since(after)
    assert all(s.status == 200 for s in late), [s for s in late if s.status != 200][:5]
    placed, by_canary = _answered_by_canary(platform, ns, late, canary_ips)
    assert placed >= len(late) // 2, "access log incomplete"
    assert by_canary == 0


def test_prometheus_down_mid_analysis_pauses_then_rolls_back(
    platform: Cluster, system: str
) -> None:
    ns = system
    prometheus = platform.pids["prometheus"]
    lab.set_version(platform, ns, "0.6.0")

    def passed_once() -> bool:
        st = lab.rollout(platform, ns)
        live = st.get("canaryVersion") == "0.6.0" and st.get("phase") == "Progressing"
        return live and any(r["result"] == "pass" for r in st.get("analysis") or [])

    wait_for(passed_once, timeout=ROLLOUT_TIMEOUT_S, what="a passing analysis of 0.6.0")
    phases: list[str] = []
    os.killpg(os.getpgid(prometheus), signal.SIGSTOP)
    try:

        def rolled_back() -> bool:
            phases.append(str(lab.rollout(platform, ns).get("phase")))
            return phases[-1] == "RolledBack"

        wait_for(rolled_back, timeout=180, what="rolled back with Prometheus down")
    finally:
        os.killpg(os.getpgid(prometheus), signal.SIGCONT)
    assert "Paused" in phases, phases
    assert not {"Promoting", "Succeeded"} & set(phases), phases
    st = lab.rollout(platform, ns)
    assert "unreachable" in st["message"], st["message"]
    assert st["stableVersion"] == "0.2.0"
    assert any(r["result"] == "error" for r in st["analysis"]), st["analysis"]
    api = lab.get(platform, ns, "deployment", API)
    assert api["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0")


def test_a_release_that_breaks_once_promoted_is_reverted_by_the_bake(
    platform: Cluster, system: str
) -> None:
    """0.7.0-latent answers fine from the canary's pods and fails from the stable
    Deployment's: the steps pass, it is promoted, and the bake's analysis (of stable's pods)
    reverts stable to the last good version."""
    ns = system
    traffic = lab.Traffic(platform, ns, rate=5)
    traffic.start()
    phases: list[str] = []
    try:
        patch = {"spec": {"version": "0.7.0-latent", "rollout": {"canary": {"bakeTime": "120s"}}}}
        platform.kubectl(
            "patch", "ragsystem", lab.NAME, "-n", ns, "--type=merge", "-p", json.dumps(patch)
        )

        def reverted() -> bool:
            st = lab.rollout(platform, ns)
            if st.get("canaryVersion") == "0.7.0-latent":
                phases.append(str(st.get("phase")))
            return phases[-1:] == ["RolledBack"]

        wait_for(reverted, timeout=ROLLOUT_TIMEOUT_S, what="0.7.0-latent reverted by the bake")
    finally:
        traffic.stop()
    assert "Promoting" in phases, phases
    st = lab.rollout(platform, ns)
    assert st["stableVersion"] == "0.2.0", st
    assert "bake of 0.7.0-latent failed, reverted to 0.2.0" in st["message"], st["message"]
    assert "error-rate" in st["message"], st["message"]
    api = lab.get(platform, ns, "deployment", API)
    assert api["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0")
    # The canary passed its analysis and was promoted: only the bake could catch this fault.
    events = lab.get(platform, ns, "events").get("items") or []
    assert any(e["reason"] == "CanaryPromoted" and "0.7.0-latent" in e["message"] for e in events)
    wait_for(lambda: lab.ready(platform, ns), timeout=READY_TIMEOUT_S, what="Ready at 0.2.0")
