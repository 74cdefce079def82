"""HorizontalPodAutoscaler of the API."""

from __future__ import annotations

import pytest

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
