"""PodDisruptionBudget of the API pods."""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import child_name, metadata, selector_labels
from rag_operator.models import OperatorConfig, RagSystem


def build_api_pdb(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(rs, child_name(rs, "api"), "api"),
        "spec": {
            "maxUnavailable": rs.spec.api.pod_disruption_budget.max_unavailable,
            "selector": {"matchLabels": selector_labels(rs, "api")},
        },
    }
