"""spec.rollout as the real API server judges it.

Aspects covered: invalid canary specs (a weight above 100, steps out of order or repeated,
an interval that is not a duration, a threshold below 0, a PromQL check without bounds or
with min above max, a quality gate fraction above 1) are refused on create with a message
that names the field; a valid canary spec is admitted and its defaults are stored (interval
10s, failure limit, error-rate limit, bake time); a RagSystem without spec.rollout gets the
RollingUpdate strategy.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.integration.operator.conftest import Kube, rag_manifest

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def canary(**fields: Any) -> dict[str, Any]:
    return {"rollout": {"strategy": "Canary", "canary": fields}}


# (id, spec, a fragment of the API server's message that names the field)
REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("weight-above-100", canary(steps=[{"weight": 50}, {"weight": 101}]), "steps[1].weight"),
    ("weight-zero", canary(steps=[{"weight": 0}]), "steps[0].weight"),
    (
        "steps-out-of-order",
        canary(steps=[{"weight": 30}, {"weight": 10}]),
        "spec.rollout.canary.steps",
    ),
    ("steps-repeated", canary(steps=[{"weight": 20}, {"weight": 20}]), "strictly increasing"),
    ("no-steps", canary(steps=[]), "spec.rollout.canary.steps"),
    ("interval-1x", canary(analysis={"interval": "1x"}), "analysis.interval"),
    ("pause-not-a-duration", canary(steps=[{"weight": 10, "pause": "soon"}]), "steps[0].pause"),
    ("bake-not-a-duration", canary(bakeTime="1 hour"), "bakeTime"),
    (
        "error-rate-below-zero",
        canary(analysis={"errorRate": {"max": -0.1}}),
        "analysis.errorRate.max",
    ),
    (
        "latency-below-zero",
        canary(analysis={"latencyP95": {"maxSeconds": -1}}),
        "analysis.latencyP95.maxSeconds",
    ),
    (
        "promql-threshold-below-zero",
        canary(analysis={"metrics": [{"name": "m", "query": "up", "max": -1}]}),
        "analysis.metrics[0].max",
    ),
    (
        "promql-without-bounds",
        canary(analysis={"metrics": [{"name": "m", "query": "up"}]}),
        "min or max",
    ),
    (
        "promql-min-above-max",
        canary(analysis={"metrics": [{"name": "m", "query": "up", "min": 2, "max": 1}]}),
        "analysis.metrics[0].min",
    ),
    ("failure-limit-below-zero", canary(analysis={"failureLimit": -1}), "failureLimit"),
    (
        "quality-fraction-above-one",
        canary(
            analysis={
                "qualityGate": {"goldenSetRef": {"name": "golden"}, "minFractionOfStable": 1.5}
            }
        ),
        "minFractionOfStable",
    ),
    (
        "prometheus-not-a-url",
        canary(analysis={"prometheus": {"address": "prometheus:9090"}}),
        "prometheus.address",
    ),
    ("probe-rate-below-zero", canary(probes={"ratePerSecond": -1}), "probes.ratePerSecond"),
    ("unknown-strategy", {"rollout": {"strategy": "BlueGreen"}}, "rollout.strategy"),
]


def _create(kube: Kube, ns: str, body: dict[str, Any], dry_run: bool = True) -> None:
    kube.custom.create_namespaced_custom_object(
        "ragops.io", "v1alpha1", ns, "ragsystems", body, dry_run="All" if dry_run else None
    )


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.body)


@pytest.mark.parametrize(
    ("spec", "field"), [(s, f) for _i, s, f in REJECTED], ids=[i for i, _s, _f in REJECTED]
)
def test_api_server_rejects_invalid_rollout(
    kube: Kube, ns: str, spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApiException) as info:
        _create(kube, ns, rag_manifest("bad", spec))
    assert info.value.status == 422, _message(info.value)
    assert field in _message(info.value)


def test_valid_canary_is_admitted_with_its_defaults(kube: Kube, ns: str) -> None:
    spec = canary(
        steps=[{"weight": 10, "pause": "1m30s"}, {"weight": 50}, {"weight": 100, "pause": "0s"}],
        analysis={
            "metrics": [{"name": "answers", "query": "sum(rate(x[$window]))", "min": 0.5}],
            "qualityGate": {"goldenSetRef": {"name": "golden"}},
        },
    )
    _create(kube, ns, rag_manifest("ok", spec), dry_run=False)
    stored = kube.rag(ns, "ok")["spec"]["rollout"]
    assert stored["strategy"] == "Canary"
    analysis = stored["canary"]["analysis"]
    assert analysis["interval"] == "10s"
    assert analysis["failureLimit"] == 1
    assert analysis["errorRate"] == {"max": 0.05}
    assert analysis["qualityGate"]["goldenSetRef"]["key"] == "golden.json"
    assert analysis["qualityGate"]["minFractionOfStable"] == 0.95
    assert stored["canary"]["bakeTime"] == "30s"
    assert stored["canary"]["steps"][1] == {"weight": 50}


def test_rolling_update_is_the_default(kube: Kube, ns: str) -> None:
    _create(kube, ns, rag_manifest("plain", {}), dry_run=False)
    assert kube.rag(ns, "plain")["spec"]["rollout"]["strategy"] == "RollingUpdate"
