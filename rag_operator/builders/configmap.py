"""ConfigMap of runtime settings, read by the API and worker through envFrom."""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import config_name, metadata
from rag_operator.builders.runtime import runtime_settings
from rag_operator.models import OperatorConfig, RagSystem


def build_configmap(rs: RagSystem, cfg: OperatorConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(rs, config_name(rs), "config"),
        "data": runtime_settings(rs, cfg),
    }
