"""ConfigMap of runtime settings, read by the API and worker through envFrom."""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import config_name, metadata
from rag_operator.builders.runtime import RuntimeConfig
from rag_operator.models import RagSystem


def build_configmap(rs: RagSystem, runtime: RuntimeConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(rs, config_name(rs), "config"),
        "data": dict(runtime.settings),
    }
