"""Services: the API's ClusterIP Service, the worker's headless metrics Service, headless
Services of managed stores."""

from __future__ import annotations

import pytest

from rag_operator.builders.service import build_api_service, build_store_service
from tests.unit.operator.helpers import CFG, make_rs


def test_api_service_targets_http_port_of_api_pods() -> None:
    svc = build_api_service(make_rs(), CFG)
    assert svc["spec"]["ports"][0]["port"] == 8000
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "api"


@pytest.mark.parametrize(
    ("store", "ports"),
    [("postgres", {5432}), ("redis", {6379}), ("neo4j", {7687, 7474})],
)
def test_store_service_is_headless_with_store_ports(store: str, ports: set[int]) -> None:
    svc = build_store_service(make_rs(), store)  # type: ignore[arg-type]
    assert svc["spec"]["clusterIP"] == "None"
    assert {p["port"] for p in svc["spec"]["ports"]} == ports
    assert svc["metadata"]["name"] == f"demo-{store}"
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == store


@pytest.mark.parametrize("port", [9090, 9300])
def test_worker_service_lists_the_metrics_port_of_every_worker(port: int) -> None:
    from rag_operator.builders.service import build_worker_service

    svc = build_worker_service(make_rs({"monitoring": {"metricsPort": port}}), CFG)
    assert svc["metadata"]["name"] == "demo-worker"
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True  # a not-ready worker is scraped too
    assert svc["spec"]["ports"] == [
        {"name": "metrics", "port": port, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "worker"
