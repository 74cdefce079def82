"""Runtime settings, read from `RAG_*` environment variables.

This model is the contract between the runtime and the operator: the operator may set only
the env names declared here (see `env_names()`), and a unit test keeps the two in line.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag_runtime.auth import parse_api_keys
from rag_runtime.domain import (
    EmbeddingProvider,
    FusionMethod,
    GenerationProvider,
    LogFormat,
    RetrievalStrategy,
)

ENV_PREFIX = "RAG_"
BUNDLED_EMBEDDING_MODEL = "all-MiniLM-L6-v2"  # the weights the runtime ships with


class Settings(BaseSettings):
    """Everything the API and the worker read at start."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Process
    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the API listens on.")
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Worker: port of its /health, /ready and /metrics (on `host`); None = none.",
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    log_format: LogFormat = Field(
        LogFormat.TEXT, description="Log line format: text, or json (one object per line)."
    )

    # Stores
    database_url: str | None = Field(
        None, description="Postgres URL; unset starts an embedded Postgres in data_dir."
    )
    data_dir: Path = Field(Path(".rag-data"), description="Local data dir for embedded Postgres.")
    redis_url: str | None = Field(
        None, description="Redis URL for the queue, cache and rate limits; unset = inline ingest."
    )
    neo4j_uri: str | None = Field(None, description="Neo4j Bolt URI; unset = graph retrieval off.")
    backup_s3_endpoint: str | None = Field(
        None,
        description="S3-compatible endpoint of s3:// backup URLs (credentials from "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY); unset = AWS S3 in AWS_REGION.",
    )
    neo4j_user: str = Field("neo4j", description="Neo4j user name.")
    neo4j_password: SecretStr | None = Field(None, description="Neo4j password.")
    neo4j_retry_seconds: float = Field(
        30.0,
        ge=0,
        description="How long a graph write retries a Neo4j that is unreachable before the "
        "request gives up (503; ingestion then skips the graph, deletes are completed by the "
        "graph sweep).",
    )
    graph_sweep_seconds: float = Field(
        300.0,
        gt=0,
        description="How often the API removes graph nodes of deleted collections and "
        "documents (deletes that failed in Neo4j are completed by it).",
    )

    # Embedding
    embedding_provider: EmbeddingProvider = Field(
        EmbeddingProvider.SENTENCE_TRANSFORMERS, description="Who computes embeddings."
    )
    embedding_model: str = Field(
        BUNDLED_EMBEDDING_MODEL,
        description="Embedding model name; with sentence-transformers, another than the "
        "bundled all-MiniLM-L6-v2 needs embedding_model_path.",
    )
    embedding_dimensions: int = Field(
        384,
        ge=1,
        le=16000,
        description="Embedding dimension; with sentence-transformers, that of the loaded model.",
    )
    embedding_batch_size: int = Field(64, ge=1, le=4096, description="Chunks per encode batch.")

    # Generation
    generation_provider: GenerationProvider = Field(
        GenerationProvider.NONE, description="LLM provider; none gives extractive answers."
    )
    generation_model: str = Field("", description="Model name for the generation provider.")
    openai_api_key: SecretStr | None = Field(None, description="OpenAI API key.")
    openai_base_url: str | None = Field(None, description="OpenAI-compatible base URL.")
    anthropic_api_key: SecretStr | None = Field(None, description="Anthropic API key.")
    anthropic_base_url: str | None = Field(None, description="Anthropic-compatible base URL.")

    # Retrieval
    retrieval_strategy: RetrievalStrategy = Field(
        RetrievalStrategy.HYBRID, description="Default retrieval strategy."
    )
    top_k: int = Field(10, ge=1, le=1000, description="Default number of results.")
    similarity_threshold: float = Field(
        0.0, ge=-1.0, le=1.0, description="Minimum cosine similarity for vector hits."
    )

    fusion: FusionMethod = Field(
        FusionMethod.WEIGHTED, description="Default hybrid fusion: rrf or weighted."
    )
    rrf_k: int = Field(60, ge=1, le=1000, description="Rank constant of reciprocal rank fusion.")
    hybrid_vector_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="Weight of the vector side in hybrid fusion."
    )
    hnsw_ef_search: int = Field(100, ge=1, le=1000, description="HNSW ef_search per query.")
    chunk_tokens: int | None = Field(
        None, ge=16, le=8192, description="Tokens per chunk; None = the model's limit."
    )
    chunk_overlap_tokens: int = Field(32, ge=0, le=1024, description="Tokens shared by chunks.")
    embedding_model_path: Path | None = Field(
        None,
        description="Local sentence-transformers model dir holding embedding_model's weights; "
        "None = the bundled all-MiniLM-L6-v2.",
    )
    keyword_cache_bytes: int = Field(
        512 * 1024 * 1024,
        ge=0,
        description="Memory for the in-memory keyword indexes of a process, in bytes; the "
        "least recently searched collections are dropped beyond it (reloaded when searched).",
    )
    cache_ttl_seconds: int = Field(600, ge=0, description="Lifetime of cached results (0 = off).")
    migrate_on_start: bool = Field(
        True,
        description="Apply schema migrations when `rag-runtime serve` starts; the operator "
        "turns it off and runs `rag-runtime migrate` as a Job instead. The worker never migrates.",
    )
    migrate_wait_seconds: float = Field(
        0.0,
        ge=0,
        le=3600,
        description="How long `rag-runtime migrate` waits for the database to accept "
        "connections before it gives up (the operator's migration Job: 120, so a Job that "
        "starts just before Postgres answers does not fail).",
    )
    shutdown_delay_seconds: float = Field(
        0.0,
        ge=0.0,
        le=60.0,
        description="On SIGTERM keep serving this long before shutting down, so a load "
        "balancer drops the endpoint before the process stops accepting (the operator sets it).",
    )
    keep_alive_seconds: int = Field(
        5,
        ge=1,
        le=3600,
        description="How long an idle HTTP keep-alive connection stays open. Behind a proxy, "
        "keep it above the proxy's idle timeout (the operator sets 120 s), so that the proxy, "
        "not the server, closes idle connections: a server closing one the proxy is reusing "
        "fails that request with a 502.",
    )
    shutdown_quiet_seconds: float = Field(
        1.0,
        gt=0.0,
        le=60.0,
        description="After the shutdown delay, keep serving until no request has come for this "
        "long (a load balancer slow to drop the endpoint still sends some).",
    )
    shutdown_max_delay_seconds: float = Field(
        0.0,
        ge=0.0,
        le=300.0,
        description="The longest a SIGTERM'd API keeps serving (0: the shutdown delay); keep "
        "it below the pod's termination grace period.",
    )

    # Worker
    worker_concurrency: int = Field(
        32,
        ge=1,
        le=256,
        description="Ingestion jobs per worker in flight (more jobs, fuller embedding batches).",
    )
    queue_name: str = Field("rag:ingest", description="Redis queue name for ingestion jobs.")
    job_timeout_seconds: int = Field(
        300,
        ge=1,
        description="Longest an ingestion job may run; a dead worker's job restarts after it.",
    )
    job_max_tries: int = Field(20, ge=1, description="Attempts per ingestion job before it fails.")
    document_max_attempts: int = Field(
        10,
        ge=1,
        le=1000,
        description="Ingestion attempts per document, across jobs, workers and restarts, "
        "before it is failed for good (a retry or a re-send starts the count again).",
    )

    # Limits and auth
    max_document_bytes: int = Field(
        10 * 1024 * 1024, ge=1, description="Largest accepted document, in bytes."
    )
    api_keys: list[str] = Field(
        default_factory=list,
        description="Accepted Bearer keys: 'key' or 'key:*' (every collection), "
        "'key:a,b' (collections a and b); the scope follows the last ':'.",
    )
    allow_anonymous: bool = Field(
        False,
        description="Serve the API without keys (every caller may use every collection); "
        "only allowed with no api_keys.",
    )
    rate_limit_per_minute: int = Field(
        0, ge=0, description="Requests per minute per API key (0 = off)."
    )
    auth_failures_per_minute: int = Field(
        10,
        ge=0,
        description="Failed authentications per client address and minute before requests "
        "from it are refused with 429 (0 = no limit).",
    )
    upload_dir: Path | None = Field(
        None, description="Directory uploads are spooled to; None = the system temp dir."
    )
    max_concurrent_uploads: int = Field(
        4,
        ge=1,
        le=1024,
        description="File uploads in progress at once per process (bounds the spooled bytes "
        "to this times max_document_bytes); more are answered 503.",
    )

    @model_validator(mode="after")
    def _servable_embedding_model(self) -> Settings:
        if (
            self.embedding_provider is EmbeddingProvider.SENTENCE_TRANSFORMERS
            and self.embedding_model != BUNDLED_EMBEDDING_MODEL
            and self.embedding_model_path is None
        ):
            raise ValueError(
                f"{ENV_PREFIX}EMBEDDING_MODEL={self.embedding_model!r} needs "
                f"{ENV_PREFIX}EMBEDDING_MODEL_PATH (a sentence-transformers model directory): "
                f"only {BUNDLED_EMBEDDING_MODEL} is bundled"
            )
        return self

    @field_validator("api_keys")
    @classmethod
    def _readable_keys(cls, value: list[str]) -> list[str]:
        parse_api_keys(value)  # fails closed: an entry it cannot read stops the process
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError(f"unknown log level {value!r}")
        return value.lower()


def env_names() -> frozenset[str]:
    """Every environment variable name the runtime reads."""
    return frozenset(ENV_PREFIX + name.upper() for name in Settings.model_fields)
