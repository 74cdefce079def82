"""The canary's children: pure builders and the children of a serving plan.

Aspects covered: with an HTTPRoute the route's backendRefs carry the weights (stable 100-w,
canary w; no canary backend at weight 0) and a canary Service and ServiceMonitor appear;
with an Ingress a second Ingress carries the nginx canary annotations while w > 0; without
exposure the canary's pods carry the API's selector labels and get a share of the replicas;
stable runs the plan's stable version (API and worker), the canary the new one, labelled
component canary; a plan without a canary has no canary children.
"""

from __future__ import annotations

from typing import Any

import pytest

from rag_operator.children import ALL_OPTIONAL, Capabilities
from rag_operator.models import OperatorConfig, RagSystem
from rag_operator.release.canary import canary_replicas, release_children
from rag_operator.release.state import Plan
from tests.unit.operator.helpers import make_rs

CFG = OperatorConfig()
ROUTE = {"httpRoute": {"parentRefs": [{"name": "gw", "namespace": "gws"}]}}
INGRESS = {"ingress": {"host": "rag.example.com", "className": "nginx"}}


def system(exposure: dict[str, Any] | None = None, replicas: int = 2) -> RagSystem:
    spec = {
        "version": "0.2.0",
        "api": {"replicas": replicas, "exposure": exposure or {}},
        "rollout": {"strategy": "Canary"},
    }
    return make_rs(spec)


def by_key(children: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["kind"], c["metadata"]["name"]): c for c in children}


def image(dep: dict[str, Any]) -> str:
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def test_stable_runs_the_stable_version_and_the_canary_the_new_one() -> None:
    kids = by_key(
        release_children(system(ROUTE), CFG, ALL_OPTIONAL, _rt(), Plan("0.1.0", "0.2.0", 10))
    )
    assert image(kids[("Deployment", "demo-api")]).endswith(":0.1.0")
    assert image(kids[("Deployment", "demo-worker")]).endswith(":0.1.0")
    canary = kids[("Deployment", "demo-canary")]
    assert image(canary).endswith(":0.2.0")
    assert canary["metadata"]["labels"]["app.kubernetes.io/component"] == "canary"
    pod_labels = canary["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["app.kubernetes.io/component"] == "canary"
    assert canary["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


@pytest.mark.parametrize("weight", [0, 10, 60, 100])
def test_httproute_weights(weight: int) -> None:
    kids = by_key(
        release_children(system(ROUTE), CFG, ALL_OPTIONAL, _rt(), Plan("0.1.0", "0.2.0", weight))
    )
    refs = kids[("HTTPRoute", "demo-api")]["spec"]["rules"][0]["backendRefs"]
    expected = [{"name": "demo-api", "port": 8000, "weight": 100 - weight}]
    if weight:
        expected.append({"name": "demo-canary", "port": 8000, "weight": weight})
    assert refs == expected
    assert ("Service", "demo-canary") in kids
    assert ("ServiceMonitor", "demo-canary") in kids
    monitor = kids[("ServiceMonitor", "demo-canary")]
    assert monitor["spec"]["endpoints"][0]["interval"] == "5s"  # half the 10 s interval


def test_ingress_canary_annotations() -> None:
    kids = by_key(
        release_children(system(INGRESS), CFG, Capabilities(), _rt(), Plan("0.1.0", "0.2.0", 30))
    )
    canary = kids[("Ingress", "demo-canary")]
    notes = canary["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/canary"] == "true"
    assert notes["nginx.ingress.kubernetes.io/canary-weight"] == "30"
    backend = canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "demo-canary"
    assert canary["spec"]["ingressClassName"] == "nginx"
    stable = kids[("Ingress", "demo-api")]
    assert "nginx.ingress.kubernetes.io/canary" not in (stable["metadata"].get("annotations") or {})


def test_ingress_canary_is_gone_at_weight_zero() -> None:
    kids = by_key(
        release_children(system(INGRESS), CFG, Capabilities(), _rt(), Plan("0.1.0", "0.2.0", 0))
    )
    assert ("Ingress", "demo-canary") not in kids
    assert ("Deployment", "demo-canary") in kids


def test_unexposed_canary_shares_the_api_service_by_replicas() -> None:
    kids = by_key(
        release_children(system(), CFG, Capabilities(), _rt(), Plan("0.1.0", "0.2.0", 30))
    )
    canary = kids[("Deployment", "demo-canary")]
    service = kids[("Service", "demo-api")]
    pod_labels = canary["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert pod_labels["ragops.io/track"] == "canary"
    assert ("Service", "demo-canary") not in kids
    assert canary["spec"]["replicas"] == 1


@pytest.mark.parametrize(
    ("replicas", "weight", "mode", "expected"),
    [
        (2, 10, "replicas", 1),
        (9, 10, "replicas", 1),
        (4, 50, "replicas", 4),
        (3, 100, "replicas", 3),
        (10, 10, "httproute", 1),
        (10, 60, "httproute", 6),
        (2, 0, "httproute", 1),
    ],
)
def test_canary_replicas(replicas: int, weight: int, mode: Any, expected: int) -> None:
    assert canary_replicas(system(replicas=replicas), weight, mode) == expected


def test_plan_without_canary_has_no_canary_children() -> None:
    kids = by_key(release_children(system(ROUTE), CFG, ALL_OPTIONAL, _rt(), Plan("0.2.0")))
    assert not [k for k in kids if k[1] == "demo-canary"]
    refs = kids[("HTTPRoute", "demo-api")]["spec"]["rules"][0]["backendRefs"]
    assert refs == [{"name": "demo-api", "port": 8000}]
    assert image(kids[("Deployment", "demo-api")]).endswith(":0.2.0")


def _rt() -> Any:
    from rag_operator.builders import runtime_config

    return runtime_config(system())
