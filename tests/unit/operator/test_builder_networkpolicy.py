"""NetworkPolicies: API reachable as configured, stores only from the system's own pods."""

from __future__ import annotations

from typing import Any

import pytest

from rag_operator.builders.networkpolicy import (
    build_api_network_policy,
    build_stores_network_policy,
    build_worker_network_policy,
)
from tests.unit.operator.helpers import CFG, make_rs, variant


def test_api_open_to_any_namespace_by_default() -> None:
    rule = build_api_network_policy(make_rs(), CFG)["spec"]["ingress"][0]
    assert "from" not in rule
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]


def test_api_limited_to_listed_namespaces() -> None:
    rs = make_rs({"networkPolicy": {"apiAllowedNamespaces": ["web", "batch"]}})
    sources = build_api_network_policy(rs, CFG)["spec"]["ingress"][0]["from"]
    expr = sources[1]["namespaceSelector"]["matchExpressions"][0]
    assert expr["values"] == ["web", "batch"]


@pytest.mark.parametrize(
    ("name", "ports"),
    [("minimal", {5432, 6379}), ("all-managed", {5432, 6379, 7687, 7474}), ("external", set())],
)
def test_stores_only_reachable_from_own_pods(name: str, ports: set[int]) -> None:
    policy = build_stores_network_policy(variant(name), CFG)
    ingress: list[dict[str, Any]] = policy["spec"]["ingress"]
    assert {p["port"] for rule in ingress for p in rule["ports"]} == ports
    for rule in ingress:
        assert rule["from"] == [
            {
                "podSelector": {
                    "matchLabels": {
                        "app.kubernetes.io/name": "ragops",
                        "app.kubernetes.io/instance": "demo",
                    }
                }
            }
        ]
    assert policy["spec"]["policyTypes"] == ["Ingress"]


def test_worker_accepts_only_metrics() -> None:
    policy = build_worker_network_policy(make_rs(), CFG)
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 9090}]}]
