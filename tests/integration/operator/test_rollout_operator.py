"""The release loop of the real operator process against the real API server and a real
Prometheus (pods on the kwok nodes; the pods' request metrics come from endpoints that serve
the runtime's own metrics, scraped with the labels a ServiceMonitor gives).

Aspects covered:
- a healthy canary goes through every step and is promoted and baked; the operator killed
  (SIGKILL) mid-rollout resumes where the status says: every step is taken exactly once
  (one CanaryStep Event per step) and the step number never goes back;
- kubectl get shows the canary's weight in its column; the rollout metrics are exported;
- Prometheus stopped mid-analysis: the rollout pauses, then rolls back after the failure
  limit, and is never promoted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.cluster import Cluster
from hack.services.prometheus import PrometheusService, start_prometheus
from tests.fixtures.cluster import wait_for
from tests.integration.operator.conftest import Kube, Operator, rag_manifest
from tests.integration.release.metric_pods import Pod, write_config

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

STEPS = [
    {"weight": 10, "pause": "4s"},
    {"weight": 30, "pause": "4s"},
    {"weight": 60, "pause": "4s"},
]
NAMES = ("healthy", "promdown")


@pytest.fixture(scope="module")
def metrics_world(
    tmp_path_factory: pytest.TempPathFactory, ns_module: str
) -> Iterator[PrometheusService]:
    """Prometheus scraping a healthy canary and stable pod of each system in `ns_module`."""
    prom = start_prometheus(Path(tmp_path_factory.mktemp("prom")))
    pods = [Pod(f"{name}-{side}-5d9f-x1") for name in NAMES for side in ("canary", "api")]
    write_config(prom, pods, namespace=ns_module)
    stop = threading.Event()
    for pod in pods:
        pod.per_tick = 3

    def traffic() -> None:
        while not stop.wait(0.2):
            for pod in pods:
                pod.tick()

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        yield prom
    finally:
        stop.set()
        thread.join()
        for pod in pods:
            pod.stop()
        prom.stop()


@pytest.fixture(scope="module")
def ns_module(cluster: Cluster, crd: Path) -> Iterator[str]:
    name = f"ro-{int(time.time() * 1000) % 10**8}"
    cluster.kubectl("create", "namespace", name)
    wait_for(
        lambda: cluster.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
        what=f"ServiceAccount {name}/default",
    )
    yield name
    cluster.kubectl("delete", "ragsystems", "--all", "-n", name, "--wait=false", check=False)
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def system(name: str, prom_url: str, failure_limit: int = 1) -> dict[str, Any]:
    return rag_manifest(
        name,
        {
            "api": {"replicas": 1},
            "worker": {"replicas": 0},
            "redis": {"enabled": False},
            "rollout": {
                "strategy": "Canary",
                "canary": {
                    "steps": STEPS,
                    "bakeTime": "2s",
                    "analysis": {
                        "interval": "2s",
                        "window": "6s",
                        "minRequests": 3,
                        "failureLimit": failure_limit,
                        "prometheus": {"address": prom_url},
                    },
                    "probes": {"ratePerSecond": 0},
                },
            },
        },
    )


def rollout(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    return dict((kube.rag(ns, name).get("status") or {}).get("rollout") or {})


def create_ready(kube: Kube, cluster: Cluster, ns: str, body: dict[str, Any]) -> None:
    kube.custom.create_namespaced_custom_object("ragops.io", "v1alpha1", ns, "ragsystems", body)
    name = body["metadata"]["name"]

    def ready() -> bool:
        conds = (kube.rag(ns, name).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    wait_for(ready, timeout=120, what=f"{ns}/{name} Ready")


def set_version(kube: Kube, ns: str, name: str, version: str) -> None:
    kube.custom.patch_namespaced_custom_object(
        "ragops.io", "v1alpha1", ns, "ragsystems", name, {"spec": {"version": version}}
    )


def test_operator_killed_mid_rollout_resumes_without_double_steps(
    cluster: Cluster,
    operator: Operator,
    kube: Kube,
    ns_module: str,
    metrics_world: PrometheusService,
) -> None:
    ns, name = ns_module, "healthy"
    create_ready(kube, cluster, ns, system(name, metrics_world.url))
    set_version(kube, ns, name, "0.2.0")
    steps_seen: list[int] = []

    def at_step(n: int) -> bool:
        st = rollout(kube, ns, name)
        if st.get("phase") in ("Progressing", "Paused") and st.get("weight"):
            steps_seen.append(int(st["step"]))
        return int(st.get("step") or 0) >= n and bool(st.get("weight"))

    wait_for(lambda: at_step(2), timeout=120, what="step 2")
    out = cluster.kubectl("get", "rag", name, "-n", ns)
    assert "CANARY" in out.stdout.splitlines()[0]
    assert "30" in out.stdout.splitlines()[1].split()
    assert 'ragops_operator_rollout_canary_weight{namespace="' + ns in operator.metrics()
    operator.kill()
    operator.start()

    def done() -> bool:
        st = rollout(kube, ns, name)
        if st.get("phase") in ("Progressing", "Paused") and st.get("weight"):
            steps_seen.append(int(st["step"]))
        return st.get("phase") == "Succeeded"

    wait_for(done, timeout=180, what="promoted and baked")
    assert steps_seen == sorted(steps_seen), "the step never goes back"
    st = rollout(kube, ns, name)
    assert st["stableVersion"] == "0.2.0"
    events = kube.core.list_namespaced_event(
        ns, field_selector=f"involvedObject.name={name},involvedObject.kind=RagSystem"
    ).items
    steps = [e for e in events if e.reason == "CanaryStep"]
    assert sorted({e.message for e in steps}) == sorted(e.message for e in steps)
    assert len(steps) == len(STEPS), [e.message for e in steps]
    assert all((e.count or 1) == 1 for e in steps), "a step taken twice"
    assert any(e.reason == "CanaryPromoted" for e in events)
    dep = kube.get("Deployment", ns, f"{name}-api")
    assert dep is not None
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0")
    wait_for(
        lambda: kube.get("Deployment", ns, f"{name}-canary") is None,
        timeout=30,
        what="the canary removed",
    )
    metrics = operator.metrics()
    phase = f'namespace="{ns}",phase="Succeeded",ragsystem="{name}"'
    assert f"ragops_operator_rollout_phase{{{phase}}} 1.0" in metrics
    assert "ragops_operator_rollout_analysis_runs_total" in metrics


def test_prometheus_down_mid_analysis_never_promotes(
    cluster: Cluster,
    operator: Operator,
    kube: Kube,
    ns_module: str,
    metrics_world: PrometheusService,
) -> None:
    ns, name = ns_module, "promdown"
    create_ready(kube, cluster, ns, system(name, metrics_world.url, failure_limit=2))
    set_version(kube, ns, name, "0.2.0")

    def passed_once() -> bool:
        st = rollout(kube, ns, name)
        return any(r["result"] == "pass" for r in st.get("analysis") or [])

    wait_for(passed_once, timeout=120, what="a passing analysis run")
    metrics_world.stop()
    phases: set[str] = set()

    def rolled_back() -> bool:
        st = rollout(kube, ns, name)
        phases.add(str(st.get("phase")))
        return st.get("phase") == "RolledBack"

    wait_for(rolled_back, timeout=120, what="rolled back with Prometheus down")
    assert "Promoting" not in phases
    assert "Succeeded" not in phases
    st = rollout(kube, ns, name)
    assert "unreachable" in st["message"], st["message"]
    assert st["stableVersion"] == "0.1.0"
    assert any(r["result"] == "error" for r in st["analysis"])
    dep = kube.get("Deployment", ns, f"{name}-api")
    assert dep is not None
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.0")
