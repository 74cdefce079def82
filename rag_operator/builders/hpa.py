"""HorizontalPodAutoscaler of the API Deployment."""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import child_name, metadata
from rag_operator.models import OperatorConfig, RagSystem
from rag_operator.models.spec import ScaleDownRules, ScaleUpRules


def _utilization(resource: str, percent: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {
            "name": resource,
            "target": {"type": "Utilization", "averageUtilization": percent},
        },
    }


def _rules(rules: ScaleUpRules | ScaleDownRules) -> dict[str, Any]:
    return {
        "stabilizationWindowSeconds": rules.stabilization_window_seconds,
        "selectPolicy": rules.select_policy.value,
        "policies": [
            {"type": p.type.value, "value": p.value, "periodSeconds": p.period_seconds}
            for p in rules.policies
        ],
    }


def build_api_hpa(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    scaling = rs.spec.api.autoscaling
    metrics = [_utilization("cpu", scaling.target_cpu_utilization_percentage)]
    if scaling.target_memory_utilization_percentage is not None:
        metrics.append(_utilization("memory", scaling.target_memory_utilization_percentage))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(rs, child_name(rs, "api"), "api"),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": child_name(rs, "api"),
            },
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": metrics,
            "behavior": {
                "scaleUp": _rules(scaling.behavior.scale_up),
                "scaleDown": _rules(scaling.behavior.scale_down),
            },
        },
    }
