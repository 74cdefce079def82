"""HorizontalPodAutoscaler of the API Deployment."""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import child_name, metadata
from rag_operator.models import OperatorConfig, RagSystem


def build_api_hpa(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    scaling = rs.spec.api.autoscaling
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
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }
