"""PodDisruptionBudgets of the API and worker pods."""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import child_name, metadata, selector_labels
from rag_operator.models import OperatorConfig, RagSystem
from rag_operator.models.spec import PodDisruptionBudgetSpec


def _pdb(rs: RagSystem, component: str, budget: PodDisruptionBudgetSpec) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(rs, child_name(rs, component), component),
        "spec": {
            "maxUnavailable": budget.max_unavailable,
            "selector": {"matchLabels": selector_labels(rs, component)},
        },
    }


def build_api_pdb(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    return _pdb(rs, "api", rs.spec.api.pod_disruption_budget)


def build_worker_pdb(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    return _pdb(rs, "worker", rs.spec.worker.pod_disruption_budget)
