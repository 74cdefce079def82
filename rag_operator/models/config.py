"""The operator's own configuration: one settings model for flags and `RAGOPS_*` env.

`ragops-operator --resync-seconds 2` and `RAGOPS_RESYNC_SECONDS=2` set the same field; a flag
wins over the environment, the environment over the default. The model is built once in
`rag_operator.main` and passed down (to kopf through its memo); nothing reads the
environment anywhere else.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "RAGOPS_"


class OperatorConfig(BaseSettings):
    """Settings of the operator itself (command line flags, then RAGOPS_* env)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    namespaces: tuple[str, ...] = Field(
        (), description="Namespaces to watch (glob patterns allowed); empty = all namespaces."
    )
    metrics_port: int = Field(
        8080, ge=0, le=65535, description="Port of the operator's /metrics (0 = off)."
    )
    liveness_port: int = Field(
        8081, ge=0, le=65535, description="Port of the /healthz liveness endpoint (0 = off)."
    )
    resync_seconds: float = Field(
        5.0, gt=0, description="Each RagSystem is compared with its children at least this often."
    )
    ready_timeout_seconds: float = Field(
        300.0, gt=0, description="A component not ready for this long after a change is Degraded."
    )
    unschedulable_grace_seconds: float = Field(
        20.0, ge=0, description="A pod unschedulable for this long makes the system Degraded."
    )
    discovery_seconds: float = Field(
        30.0,
        gt=0,
        description="How often the API is asked which optional CRDs (Gateway API, "
        "ServiceMonitor) it serves; a CRD installed later is used within this.",
    )
    max_parallel_reconciles: int = Field(
        16, ge=1, le=1024, description="RagSystems reconciled at the same time."
    )
    postgres_image: str = Field(
        "pgvector/pgvector:pg17", min_length=1, description="Default image of managed Postgres."
    )
    redis_image: str = Field(
        "redis:7.4-alpine", min_length=1, description="Default image of managed Redis."
    )
    neo4j_image: str = Field(
        "neo4j:5.26-community", min_length=1, description="Default image of managed Neo4j."
    )
    prometheus_url: str = Field(
        "",
        description="Prometheus HTTP API the canary analysis queries when a RagSystem names "
        "none (spec.rollout.canary.analysis.prometheus).",
    )
    verbose: bool = Field(False, description="Log at debug level.")
