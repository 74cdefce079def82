"""ServiceMonitors of the API and the worker, and when the operator creates them.

Aspects covered: each selects its component's Service by port name and interval; targets are
relabeled with `ragsystem` and `component` from the Service's labels, which the Services do
carry (what the dashboard and alert selectors need); created only when the CRD is served and
monitoring is on.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from rag_operator.builders.service import build_api_service, build_worker_service
from rag_operator.builders.servicemonitor import (
    build_service_monitor,
    build_worker_service_monitor,
)
from rag_operator.children import Capabilities
from tests.unit.operator.helpers import ALL_CRDS, CFG, NO_CRDS, children, make_rs

PAIRS = [
    (build_service_monitor, build_api_service, "api", "http"),
    (build_worker_service_monitor, build_worker_service, "worker", "metrics"),
]


@pytest.mark.parametrize("interval", ["15s", "1m"])
@pytest.mark.parametrize(("monitor", "service", "component", "port"), PAIRS)
def test_service_monitor_scrapes_metrics_of_its_component(
    interval: str, monitor: Any, service: Any, component: str, port: str
) -> None:
    rs = make_rs({"monitoring": {"scrapeInterval": interval}})
    sm = monitor(rs, CFG)
    endpoint = sm["spec"]["endpoints"][0]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == (
        port,
        "/metrics",
        interval,
    )
    assert sm["metadata"]["name"] == f"demo-{component}"
    svc = service(rs, CFG)
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert port in {p["name"] for p in svc["spec"]["ports"]}


@pytest.mark.parametrize(("monitor", "service", "component", "port"), PAIRS)
def test_targets_get_ragsystem_and_component_from_service_labels(
    monitor: Any, service: Any, component: str, port: str
) -> None:
    """Apply the relabelings as Prometheus would to the Service's discovery labels."""
    rs = make_rs()
    svc_labels = service(rs, CFG)["metadata"]["labels"]
    discovered = {
        "__meta_kubernetes_service_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k): v
        for k, v in svc_labels.items()
    }
    target: dict[str, str] = {}
    for rule in monitor(rs, CFG)["spec"]["endpoints"][0]["relabelings"]:
        assert rule["action"] == "replace"
        target[rule["targetLabel"]] = ";".join(discovered[s] for s in rule["sourceLabels"])
    assert target == {"ragsystem": "demo", "component": component}


@pytest.mark.parametrize(
    ("caps", "enabled", "expected"),
    [
        (NO_CRDS, True, set()),
        (ALL_CRDS, True, {"demo-api", "demo-worker"}),
        (ALL_CRDS, False, set()),
    ],
)
def test_service_monitors_only_when_crd_exists_and_enabled(
    caps: Capabilities, enabled: bool, expected: set[str]
) -> None:
    rs = make_rs({"monitoring": {"enabled": enabled}})
    names = {c["metadata"]["name"] for c in children(rs, caps) if c["kind"] == "ServiceMonitor"}
    assert names == expected
