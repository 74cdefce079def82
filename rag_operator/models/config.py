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
    leader_election: bool = Field(
        False,
        description="Run only while holding a coordination.k8s.io Lease (for two or more "
        "replicas); the others stand by and take over when the holder goes.",
    )
    leader_election_namespace: str = Field(
        "",
        description="Namespace of the Lease (empty: the service account's namespace in a "
        "pod, else default).",
    )
    leader_election_id: str = Field(
        "ragops-operator", min_length=1, description="Name of the leader election Lease."
    )
    leader_election_identity: str = Field(
        "", description="This replica's name in the Lease (empty: host name and a random suffix)."
    )
    lease_duration_seconds: float = Field(
        8.0,
        ge=3.0,
        le=120.0,
        description="A standby takes over after seeing the Lease unrenewed this long; the "
        "holder renews every quarter of it and stops at three quarters without renewal.",
    )
    prometheus_url: str = Field(
        "",
        description="Prometheus HTTP API the canary analysis queries when a RagSystem names "
        "none (spec.rollout.canary.analysis.prometheus).",
    )
    verbose: bool = Field(False, description="Log at debug level.")
    # Policy: what a RagSystem may ask for (see docs/security.md). Whoever may edit a
    # RagSystem chooses the images its pods run and the Secrets they read.
    allowed_image_prefixes: tuple[str, ...] = Field(
        (),
        description="Images a RagSystem may name (spec.image.repository, "
        "spec.<store>.managed.image) must start with one of these, written in full "
        "('ghcr.io/ragops/', 'docker.io/library/redis'); a prefix that does not end in "
        "'/', ':' or '@' matches a whole path segment. Empty = any image.",
    )
    allowed_secret_names: tuple[str, ...] = Field(
        (),
        description="Secrets a RagSystem may reference must match one of these glob patterns "
        "('rag-*'); empty = any name.",
    )
    secret_label_selector: str = Field(
        "",
        pattern=r"^$|^[A-Za-z0-9./_-]+(=[A-Za-z0-9._-]*)?(,[A-Za-z0-9./_-]+(=[A-Za-z0-9._-]*)?)*$",
        description="Label requirements ('key=value' or 'key', comma-separated) that every "
        "Secret a RagSystem references must meet; empty = no requirement.",
    )
