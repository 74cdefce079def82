"""NetworkPolicy semantics of the node agent (hack/node_agent/netpolicy.py), as the
networking.k8s.io/v1 API defines them, and the nft scripts they become."""

from __future__ import annotations

from typing import Any

import pytest

from hack.node_agent import netpolicy as np
from hack.node_agent.selectors import selects

HOSTS = ["198.18.0.1", "198.18.16.0/22"]


def pod(ns: str, name: str, ip: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "status": {"podIP": ip},
        "spec": {"containers": [{"ports": [{"name": "pg", "containerPort": 5432}]}]},
    }


def policy(ns: str, selector: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": "p"},
        "spec": {"podSelector": {"matchLabels": selector}, **spec},
    }


PODS = [
    pod("a", "db", "10.0.0.10", app="db"),
    pod("a", "api", "10.0.0.11", app="api"),
    pod("b", "api", "10.0.0.12", app="api"),
    pod("c", "tool", "10.0.0.13"),
]
NAMESPACES = [
    {"metadata": {"name": "a"}},
    {"metadata": {"name": "b", "labels": {"team": "x"}}},
    {"metadata": {"name": "c"}},
]


def view(*policies: dict[str, Any]) -> np.ClusterView:
    return np.cluster_view(PODS, NAMESPACES, policies)


def test_a_pod_no_policy_selects_is_open_both_ways() -> None:
    v = view(policy("a", {"app": "other"}, ingress=[]))
    assert np.allows(v, "10.0.0.13", "10.0.0.10", 5432)
    assert np.allows(v, "10.0.0.10", "10.0.0.13", 80)
    assert "chain" not in np.nft_script(v, v.pod_at("10.0.0.10"), HOSTS)  # type: ignore[arg-type]


def test_ingress_rule_with_pod_and_namespace_peers_and_a_named_port() -> None:
    rule = {"from": [{"podSelector": {"matchLabels": {"app": "api"}}}]}
    rule["from"].append({"namespaceSelector": {"matchLabels": {"team": "x"}}})
    v = view(policy("a", {"app": "db"}, ingress=[{**rule, "ports": [{"port": "pg"}]}]))
    assert np.allows(v, "10.0.0.11", "10.0.0.10", 5432)  # same namespace, app=api
    assert np.allows(v, "10.0.0.12", "10.0.0.10", 5432)  # namespace team=x
    assert not np.allows(v, "10.0.0.13", "10.0.0.10", 5432)  # neither
    assert not np.allows(v, "10.0.0.11", "10.0.0.10", 5433)  # another port
    assert not np.allows(v, "10.0.0.11", "10.0.0.10", 5432, "UDP")
    script = np.nft_script(v, v.pod_at("10.0.0.10"), HOSTS)  # type: ignore[arg-type]
    assert "ip saddr 10.0.0.11 tcp dport 5432 accept" in script
    assert "ip saddr 10.0.0.12 tcp dport 5432 accept" in script
    assert "10.0.0.13" not in script
    assert "policy drop" in script
    assert "chain egress" not in script


def test_both_selectors_in_one_peer_mean_both() -> None:
    peer = {
        "namespaceSelector": {"matchLabels": {"team": "x"}},
        "podSelector": {"matchLabels": {"app": "db"}},
    }
    v = view(policy("a", {"app": "db"}, ingress=[{"from": [peer]}]))
    assert not np.allows(v, "10.0.0.12", "10.0.0.10", 5432)  # team=x but app=api


def test_ip_block_with_except_and_port_ranges() -> None:
    block = {"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.0.0.12/32"]}}
    ports = [{"protocol": "TCP", "port": 8000, "endPort": 8010}]
    v = view(policy("a", {"app": "db"}, ingress=[{"from": [block], "ports": ports}]))
    assert np.allows(v, "10.0.0.13", "10.0.0.10", 8005)
    assert not np.allows(v, "10.0.0.12", "10.0.0.10", 8005)
    assert not np.allows(v, "10.0.0.13", "10.0.0.10", 8011)
    script = np.nft_script(v, v.pod_at("10.0.0.10"), HOSTS)  # type: ignore[arg-type]
    assert "ip saddr 10.0.0.0/24 ip saddr != { 10.0.0.12/32 } tcp dport 8000-8010 accept" in script


def test_egress_is_isolated_only_when_policy_types_say_so() -> None:
    ingress_only = view(policy("a", {"app": "api"}, ingress=[{}]))
    assert np.allows(ingress_only, "10.0.0.11", "10.0.0.13", 80)
    implied = view(policy("a", {"app": "api"}, egress=[{"ports": [{"port": 53}]}]))
    assert not np.allows(implied, "10.0.0.11", "10.0.0.13", 80)
    assert np.allows(implied, "10.0.0.11", "10.0.0.13", 53)
    deny_all = view(policy("a", {"app": "api"}, policyTypes=["Egress"]))
    assert not np.allows(deny_all, "10.0.0.11", "10.0.0.10", 5432)
    script = np.nft_script(deny_all, deny_all.pod_at("10.0.0.11"), HOSTS)  # type: ignore[arg-type]
    egress = script[script.index("chain egress") :]
    assert "ip daddr { 198.18.0.1, 198.18.16.0/22 } accept" in egress
    assert egress.count("accept") == 3  # loopback, replies, the host: nothing else


def test_egress_named_port_resolves_on_the_peer() -> None:
    to_db = {"to": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"port": "pg"}]}
    v = view(policy("a", {"app": "api"}, policyTypes=["Egress"], egress=[to_db]))
    assert np.allows(v, "10.0.0.11", "10.0.0.10", 5432)
    assert not np.allows(v, "10.0.0.11", "10.0.0.13", 5432)
    script = np.nft_script(v, v.pod_at("10.0.0.11"), HOSTS)  # type: ignore[arg-type]
    assert "ip daddr 10.0.0.10 tcp dport 5432 accept" in script


@pytest.mark.parametrize(
    ("expr", "labels", "expected"),
    [
        ({"key": "k", "operator": "In", "values": ["v"]}, {"k": "v"}, True),
        ({"key": "k", "operator": "In", "values": ["v"]}, {}, False),
        ({"key": "k", "operator": "NotIn", "values": ["v"]}, {"k": "w"}, True),
        ({"key": "k", "operator": "NotIn", "values": ["v"]}, {"k": "v"}, False),
        ({"key": "k", "operator": "Exists"}, {"k": ""}, True),
        ({"key": "k", "operator": "DoesNotExist"}, {"k": ""}, False),
    ],
)
def test_label_selector_expressions(
    expr: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    assert selects({"matchExpressions": [expr]}, labels) is expected


def test_a_pod_without_an_address_is_not_in_the_view() -> None:
    assert np.pod_view({"metadata": {"namespace": "a", "name": "x"}, "status": {}}) is None
