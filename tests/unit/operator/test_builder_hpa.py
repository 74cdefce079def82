"""HorizontalPodAutoscaler of the API.

Aspects covered: bounds and the CPU target; the default scale-up/scale-down behaviour and
one set in the spec (a direction set in part keeps its other defaults); the memory target next
to CPU only when set; bad behaviour refused by the models naming the field.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rag_operator.builders.hpa import build_api_hpa
from tests.unit.operator.helpers import CFG, make_rs


@pytest.mark.parametrize(("low", "high", "cpu"), [(1, 3, 50), (2, 10, 70), (5, 5, 90)])
def test_hpa_bounds_and_cpu_target(low: int, high: int, cpu: int) -> None:
    rs = make_rs(
        {
            "api": {
                "autoscaling": {
                    "enabled": True,
                    "minReplicas": low,
                    "maxReplicas": high,
                    "targetCpuUtilizationPercentage": cpu,
                }
            }
        }
    )
    hpa = build_api_hpa(rs, CFG)
    assert hpa["spec"]["minReplicas"] == low
    assert hpa["spec"]["maxReplicas"] == high
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == cpu
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "demo-api",
    }


def _hpa(autoscaling: dict[str, object]) -> dict[str, object]:
    spec = build_api_hpa(make_rs({"api": {"autoscaling": {"enabled": True, **autoscaling}}}), CFG)
    return spec["spec"]  # type: ignore[no-any-return]


def test_default_behavior_scales_up_at_once_and_down_slowly() -> None:
    behavior = _hpa({})["behavior"]  # type: ignore[index]
    up, down = behavior["scaleUp"], behavior["scaleDown"]
    assert up["stabilizationWindowSeconds"] == 0
    assert up["selectPolicy"] == "Max"
    assert {"type": "Percent", "value": 100, "periodSeconds": 30} in up["policies"]
    assert {"type": "Pods", "value": 2, "periodSeconds": 60} in up["policies"]
    assert down["stabilizationWindowSeconds"] == 300
    assert down["selectPolicy"] == "Min"
    assert {"type": "Pods", "value": 1, "periodSeconds": 60} in down["policies"]


def test_behavior_follows_the_spec() -> None:
    behavior = _hpa(
        {
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 30,
                    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}],
                },
                "scaleDown": {"selectPolicy": "Disabled"},
            }
        }
    )["behavior"]  # type: ignore[index]
    assert behavior["scaleUp"] == {
        "stabilizationWindowSeconds": 30,
        "selectPolicy": "Max",
        "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}],
    }
    # A direction set only in part keeps its other defaults.
    assert behavior["scaleDown"]["selectPolicy"] == "Disabled"
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert len(behavior["scaleDown"]["policies"]) == 2


def test_memory_target_next_to_cpu_only_when_set() -> None:
    assert [m["resource"]["name"] for m in _hpa({})["metrics"]] == ["cpu"]  # type: ignore[attr-defined]
    metrics = _hpa({"targetMemoryUtilizationPercentage": 85})["metrics"]
    assert [m["resource"]["name"] for m in metrics] == ["cpu", "memory"]  # type: ignore[attr-defined]
    assert metrics[1]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 85}  # type: ignore[index]


@pytest.mark.parametrize(
    ("behavior", "field"),
    [
        ({"scaleUp": {"stabilizationWindowSeconds": 4000}}, "stabilizationWindowSeconds"),
        ({"scaleDown": {"policies": []}}, "policies"),
        ({"scaleUp": {"policies": [{"type": "Nodes", "value": 1, "periodSeconds": 60}]}}, "type"),
        ({"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 60}]}}, "value"),
        (
            {"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 3600}]}},
            "periodSeconds",
        ),
        ({"scaleDown": {"selectPolicy": "Random"}}, "selectPolicy"),
    ],
)
def test_bad_behavior_is_refused_naming_the_field(behavior: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        make_rs({"api": {"autoscaling": {"enabled": True, "behavior": behavior}}})
    assert field in str(err.value)
