"""NetworkPolicies: API reachable as configured, stores only from the system's own pods.

Aspects covered: the API's ingress (any namespace, or the listed ones); stores reachable only
from the system's pods on their ports and with no egress at all; the worker's metrics port
open only to the scraper pods (Prometheus by default) of the allowed namespaces; the API's and
worker's egress limited to this system's stores, DNS, the provider endpoints' ports, the
default ports of external stores and the extra ports the spec lists.
"""

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
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"] == []  # stores connect nowhere


def test_worker_metrics_only_from_prometheus_pods_by_default() -> None:
    policy = build_worker_network_policy(make_rs(), CFG)
    assert policy["spec"]["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                }
            ],
            "ports": [{"protocol": "TCP", "port": 9090}],
        }
    ]


def test_worker_metrics_from_the_monitoring_namespace() -> None:
    netpol = {"metricsAllowedNamespaces": ["monitoring"], "metricsScraperLabels": {}}
    rs = make_rs({"networkPolicy": netpol})
    (peer,) = build_worker_network_policy(rs, CFG)["spec"]["ingress"][0]["from"]
    assert peer == {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}
            ]
        }
    }


def _egress_ports(policy: dict[str, Any]) -> list[tuple[str, int, bool]]:
    """(protocol, port, limited to this system's stores) of every egress rule."""
    return sorted(
        (p["protocol"], p["port"], "to" in rule)
        for rule in policy["spec"]["egress"]
        for p in rule["ports"]
    )


@pytest.mark.parametrize("build", [build_api_network_policy, build_worker_network_policy])
def test_runtime_egress_is_stores_and_dns_only_by_default(build: Any) -> None:
    policy = build(make_rs(), CFG)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert _egress_ports(policy) == [
        ("TCP", 53, False),
        ("TCP", 5432, True),
        ("TCP", 6379, True),
        ("UDP", 53, False),
    ]
    to = next(rule["to"] for rule in policy["spec"]["egress"] if "to" in rule)
    assert to[0]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "demo"
    assert to[0]["podSelector"]["matchExpressions"][0]["values"] == ["postgres", "redis", "neo4j"]


@pytest.mark.parametrize(
    ("spec", "outside"),
    [
        (
            {
                "generation": {
                    "provider": "openai",
                    "apiKeySecretRef": {"name": "o", "key": "k"},
                    "baseUrl": "http://fake-openai.tools:8089/v1",
                }
            },
            [8089],
        ),
        (
            {"generation": {"provider": "anthropic", "apiKeySecretRef": {"name": "a", "key": "k"}}},
            [443],
        ),
        ({"networkPolicy": {"extraEgressPorts": [6380]}}, [6380]),
    ],
)
def test_runtime_egress_reaches_the_configured_endpoints(
    spec: dict[str, Any], outside: list[int]
) -> None:
    ports = _egress_ports(build_api_network_policy(make_rs(spec), CFG))
    assert [p for proto, p, to in ports if proto == "TCP" and not to and p != 53] == outside


def test_runtime_egress_reaches_external_stores_on_their_default_ports() -> None:
    ports = _egress_ports(build_api_network_policy(variant("external"), CFG))
    assert ("TCP", 5432, False) in ports
    assert ("TCP", 6379, False) in ports
    assert not [p for p in ports if p[2]]  # no managed store to reach
