"""The set of children each spec asks for, and what every child shares.

Aspects covered: which kinds exist per variant (stores, HPA, PDB, policies, exposure), standard
labels and owner references on every child, names that fit the DNS limits, and purity (the
same spec builds the same manifests).
"""

from __future__ import annotations

import pytest

from rag_operator.children import Capabilities
from tests.unit.operator.helpers import ALL_CRDS, NO_CRDS, VARIANTS, children, make_rs, variant

STANDARD = {
    "app.kubernetes.io/name": "ragops",
    "app.kubernetes.io/instance": "demo",
    "app.kubernetes.io/part-of": "ragops",
    "app.kubernetes.io/managed-by": "ragops-operator",
}


def _kinds(name: str, caps: Capabilities = NO_CRDS) -> set[str]:
    return {f"{c['kind']}/{c['metadata']['name']}" for c in children(variant(name), caps)}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_child_has_standard_labels_owner_and_namespace(name: str) -> None:
    for child in children(variant(name), ALL_CRDS):
        meta = child["metadata"]
        assert STANDARD.items() <= meta["labels"].items(), child["kind"]
        assert meta["labels"]["app.kubernetes.io/component"]
        assert meta["namespace"] == "team-a"
        owner = meta["ownerReferences"][0]
        assert owner["kind"] == "RagSystem"
        assert owner["uid"] == "0000-uid"
        assert owner["controller"] is True
        assert len(meta["name"]) <= 63


@pytest.mark.parametrize(
    ("name", "present", "absent"),
    [
        (
            "minimal",
            {
                "StatefulSet/demo-postgres",
                "StatefulSet/demo-redis",
                "PodDisruptionBudget/demo-api",
                "PodDisruptionBudget/demo-worker",
                "Service/demo-worker",
                "NetworkPolicy/demo-stores",
            },
            {"StatefulSet/demo-neo4j", "HorizontalPodAutoscaler/demo-api", "Ingress/demo-api"},
        ),
        ("all-managed", {"StatefulSet/demo-neo4j", "Service/demo-neo4j"}, set()),
        (
            "external",
            {"Deployment/demo-api"},
            {"StatefulSet/demo-postgres", "StatefulSet/demo-redis", "Service/demo-redis"},
        ),
        ("no-redis", {"Deployment/demo-worker"}, {"StatefulSet/demo-redis"}),
        ("autoscaling", {"HorizontalPodAutoscaler/demo-api"}, set()),
        ("ingress", {"Ingress/demo-api"}, {"HTTPRoute/demo-api"}),
    ],
)
def test_children_follow_the_spec(name: str, present: set[str], absent: set[str]) -> None:
    kinds = _kinds(name)
    assert present <= kinds, present - kinds
    assert not (absent & kinds), absent & kinds


def test_httproute_only_when_gateway_api_is_served() -> None:
    assert "HTTPRoute/demo-api" not in _kinds("httproute", NO_CRDS)
    assert "HTTPRoute/demo-api" in _kinds("httproute", ALL_CRDS)


def test_monitoring_children_only_when_their_crds_are_served_and_monitoring_is_on() -> None:
    monitoring = {
        "ServiceMonitor/demo-api",
        "ServiceMonitor/demo-worker",
        "PrometheusRule/demo-alerts",
    }
    assert monitoring <= _kinds("minimal", ALL_CRDS)
    assert not (monitoring & _kinds("minimal", NO_CRDS))
    off = make_rs({"monitoring": {"enabled": False}})
    assert not (
        {f"{c['kind']}/{c['metadata']['name']}" for c in children(off, ALL_CRDS)} & monitoring
    )


def test_network_policies_can_be_turned_off() -> None:
    kinds = {c["kind"] for c in children(make_rs({"networkPolicy": {"enabled": False}}))}
    assert "NetworkPolicy" not in kinds


def test_pdb_can_be_turned_off() -> None:
    off = {"podDisruptionBudget": {"enabled": False}}
    rs = make_rs({"api": off, "worker": off})
    assert "PodDisruptionBudget" not in {c["kind"] for c in children(rs)}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_builders_are_pure(name: str) -> None:
    assert children(variant(name), ALL_CRDS) == children(variant(name), ALL_CRDS)


def test_configmap_comes_first_so_pods_find_it() -> None:
    assert children(make_rs())[0]["kind"] == "ConfigMap"
