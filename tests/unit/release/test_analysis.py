"""The analysis as pure functions: the PromQL it asks, and the verdict from the values.

Aspects covered: the queries select the canary's pods (stable's to compare; the stable pods
alone during the bake), leave out health, readiness and metrics requests, and substitute
$namespace, $canary_pods, $stable_pods and $window in user queries; too few requests or a
check without a value is no data (never a pass); each limit (absolute, above stable, a ratio
to stable, user bounds, the quality gate) fails with the metric and its value named.
"""

from __future__ import annotations

from typing import Any

import pytest

from rag_operator.models import ObjectMeta, RagSystem, RagSystemSpec
from rag_operator.models.status import Measurement
from rag_operator.release.analysis import judge, queries
from rag_operator.release.prometheus import first_value
from rag_operator.release.state import Target

CANARY = Target("canary", "0.2.0", 1, 10)
BAKE = Target("bake", "0.2.0", 0, 100)


def system(analysis: dict[str, Any] | None = None) -> RagSystem:
    spec = {
        "version": "0.2.0",
        "rollout": {"strategy": "Canary", "canary": {"analysis": analysis or {}}},
    }
    return RagSystem(
        metadata=ObjectMeta(name="demo", namespace="ns"),
        spec=RagSystemSpec.model_validate(spec),
    )


def test_queries_select_the_canary_pods_and_leave_out_probes_of_health() -> None:
    qs = {q.metric: q.promql for q in queries(system(), CANARY)}
    assert set(qs) == {"requests", "error-rate"}
    assert 'pod=~"demo-canary-.*"' in qs["requests"]
    assert 'namespace="ns"' in qs["requests"]
    assert "/api/v1/health|/api/v1/ready|/metrics" in qs["requests"]
    assert 'status=~"5.."' in qs["error-rate"]
    assert "[30s]" in qs["error-rate"]


def test_comparisons_with_stable_query_stable_pods() -> None:
    rs = system({"errorRate": {"maxAboveStable": 0.01}, "latencyP95": {"maxRatioToStable": 1.5}})
    qs = {q.metric: q.promql for q in queries(rs, CANARY)}
    assert 'pod=~"demo-api-.*"' in qs["stable-error-rate"]
    assert "histogram_quantile(0.95" in qs["latency-p95"]
    assert 'pod=~"demo-api-.*"' in qs["stable-latency-p95"]


def test_bake_queries_the_stable_pods_and_compares_with_nothing() -> None:
    rs = system({"errorRate": {"maxAboveStable": 0.01}, "latencyP95": {"maxRatioToStable": 1.5}})
    qs = {q.metric: q.promql for q in queries(rs, BAKE)}
    assert set(qs) == {"requests", "error-rate"}
    assert 'pod=~"demo-api-.*"' in qs["requests"]


def test_user_query_placeholders() -> None:
    rs = system(
        {
            "metrics": [
                {"name": "hits", "query": 'x{ns="$namespace",p=~"$canary_pods"}[$window]', "min": 1}
            ]
        }
    )
    qs = {q.metric: q.promql for q in queries(rs, CANARY)}
    assert qs["hits"] == 'x{ns="ns",p=~"demo-canary-.*"}[30s]'


@pytest.mark.parametrize(
    ("analysis", "values", "result", "fragment"),
    [
        ({}, {"requests": 100, "error-rate": 0.01}, "pass", "error-rate 0.01"),
        ({}, {"requests": 100, "error-rate": 0.2}, "fail", "error-rate 0.2 > 0.05"),
        ({}, {"requests": 3, "error-rate": 0.0}, "nodata", "3 canary requests"),
        ({}, {"requests": None, "error-rate": None}, "nodata", "none canary requests"),
        ({}, {"requests": 100, "error-rate": None}, "nodata", "error-rate: no data"),
        (
            {"errorRate": {"max": None, "maxAboveStable": 0.01}},
            {"requests": 50, "error-rate": 0.05, "stable-error-rate": 0.0},
            "fail",
            "error-rate-above-stable 0.05 > 0.01",
        ),
        (
            {"errorRate": {"maxAboveStable": 0.01}},
            {"requests": 50, "error-rate": 0.0, "stable-error-rate": None},
            "nodata",
            "error-rate-above-stable: no data",
        ),
        (
            {"latencyP95": {"maxSeconds": 0.5}},
            {"requests": 50, "error-rate": 0.0, "latency-p95": 0.9},
            "fail",
            "latency-p95 0.9 > 0.5",
        ),
        (
            {"latencyP95": {"maxRatioToStable": 1.5}},
            {"requests": 50, "error-rate": 0.0, "latency-p95": 0.4, "stable-latency-p95": 0.2},
            "fail",
            "latency-p95-ratio 2 > 1.5",
        ),
        (
            {"latencyP95": {"maxRatioToStable": 1.5}},
            {"requests": 50, "error-rate": 0.0, "latency-p95": 0.25, "stable-latency-p95": 0.2},
            "pass",
            "latency-p95-ratio 1.25",
        ),
        (
            {"metrics": [{"name": "answers", "query": "q", "min": 0.9}]},
            {"requests": 50, "error-rate": 0.0, "answers": 0.5},
            "fail",
            "answers 0.5 < 0.9",
        ),
        (
            {"metrics": [{"name": "answers", "query": "q", "min": 0.9}]},
            {"requests": 50, "error-rate": 0.0, "answers": None},
            "nodata",
            "answers: no data",
        ),
    ],
)
def test_judge(
    analysis: dict[str, Any], values: dict[str, float | None], result: str, fragment: str
) -> None:
    verdict = judge(system(analysis), CANARY, values)
    assert verdict.result == result, verdict
    assert fragment in verdict.message
    assert verdict.measurements[0].metric == "requests"


def test_a_failing_quality_gate_fails_the_run() -> None:
    gate = Measurement(metric="ndcg", result="fail", value=0.4, limit=">= 0.95 of stable's 0.8")
    verdict = judge(system(), CANARY, {"requests": 50, "error-rate": 0.0}, [gate])
    assert verdict.result == "fail"
    # The value, then the bound it missed (not a claim that the value meets it).
    assert "ndcg 0.4 (needs >= 0.95 of stable's 0.8)" in verdict.message


@pytest.mark.parametrize(
    ("data", "value"),
    [
        ({"resultType": "vector", "result": [{"metric": {}, "value": [1, "0.25"]}]}, 0.25),
        ({"resultType": "vector", "result": []}, None),
        ({"resultType": "vector", "result": [{"metric": {}, "value": [1, "NaN"]}]}, None),
        ({"resultType": "scalar", "result": [1, "3"]}, 3.0),
    ],
)
def test_first_value(data: dict[str, Any], value: float | None) -> None:
    assert first_value(data) == value
