"""The runtime's configuration: plain settings (ConfigMap) and secret env references.

`runtime_config(rs)` derives everything once per reconcile pass (settings, env from Secrets,
the Secrets the system needs, the config hash) into a frozen `RuntimeConfig` that the
builders and the status share. Every env name here must be declared by the runtime's
settings model (`RAG_*`); a unit test checks the output against
`rag_runtime.settings.env_names()`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from rag_operator.builders.common import (
    API_KEYS_KEY,
    DATA_DIR,
    STORES,
    api_keys_name,
    child_name,
    config_name,
    credentials_name,
    stable_hash,
    store_mode,
)
from rag_operator.models import (
    API_PORT,
    EmbeddingProvider,
    GenerationProvider,
    RagSystem,
    SecretKeyRef,
)


@dataclass(frozen=True)
class SecretReference:
    """A user Secret the system needs: the spec field naming it, its name, and the key."""

    path: str
    name: str
    key: str | None


@dataclass(frozen=True)
class RuntimeConfig:
    """What one pass derives from the spec for the runtime; built once by `runtime_config`."""

    settings: Mapping[str, str]
    secret_env: tuple[Mapping[str, Any], ...]
    secret_refs: tuple[SecretReference, ...]
    config_hash: str

    def env(self) -> list[dict[str, Any]]:
        """The Secret-backed env entries, as fresh objects a manifest may own."""
        return [copy.deepcopy(dict(e)) for e in self.secret_env]


def runtime_config(rs: RagSystem) -> RuntimeConfig:
    """Settings, Secret env, referenced Secrets and the config hash of one RagSystem."""
    settings = runtime_settings(rs)
    secret_env = runtime_secret_env(rs)
    digest = stable_hash({"config": config_name(rs), "settings": settings, "secrets": secret_env})
    return RuntimeConfig(
        settings=MappingProxyType(settings),
        secret_env=tuple(MappingProxyType(e) for e in secret_env),
        secret_refs=tuple(secret_references(rs)),
        config_hash=digest,
    )


def runtime_settings(rs: RagSystem) -> dict[str, str]:
    """Non-secret settings shared by the API and the worker."""
    spec = rs.spec
    data = {
        "RAG_HOST": "0.0.0.0",
        "RAG_PORT": str(API_PORT),
        "RAG_LOG_LEVEL": spec.logging.level.value,
        "RAG_LOG_FORMAT": spec.logging.format.value,
        "RAG_DATA_DIR": DATA_DIR,
        "RAG_EMBEDDING_PROVIDER": spec.embedding.provider.value,
        "RAG_EMBEDDING_MODEL": spec.embedding.model,
        "RAG_EMBEDDING_DIMENSIONS": str(spec.embedding.dimensions),
        "RAG_GENERATION_PROVIDER": spec.generation.provider.value,
        "RAG_GENERATION_MODEL": spec.generation.model,
        "RAG_RETRIEVAL_STRATEGY": spec.retrieval.default_strategy.value,
        "RAG_TOP_K": str(spec.retrieval.top_k),
        "RAG_SIMILARITY_THRESHOLD": repr(float(spec.retrieval.similarity_threshold)),
        "RAG_FUSION": spec.retrieval.fusion.value,
        "RAG_RRF_K": str(spec.retrieval.rrf_k),
        "RAG_HYBRID_VECTOR_WEIGHT": repr(float(spec.retrieval.vector_weight)),
        "RAG_CACHE_TTL_SECONDS": str(spec.retrieval.cache_ttl_seconds),
        "RAG_RATE_LIMIT_PER_MINUTE": str(spec.api.rate_limit.requests_per_minute),
        "RAG_MAX_DOCUMENT_BYTES": str(spec.ingestion.max_document_bytes),
        "RAG_CHUNK_OVERLAP_TOKENS": str(spec.ingestion.chunk_overlap_tokens),
        "RAG_WORKER_CONCURRENCY": str(spec.worker.concurrency),
        # The migration Job moves the schema; the API pods never migrate at start.
        "RAG_MIGRATE_ON_START": "false",
        # On SIGTERM the API keeps serving while Services and the Gateway drop its endpoint:
        # 5 s, then until 1 s passes without a request, 20 s at most (the grace period is 30).
        "RAG_SHUTDOWN_DELAY_SECONDS": "5",
        "RAG_SHUTDOWN_MAX_DELAY_SECONDS": "20",
        # Idle connections are closed by the proxy in front (Traefik 90 s, ingress-nginx 60 s),
        # never by the API while the proxy may be reusing one (a POST failed with 502).
        "RAG_KEEP_ALIVE_SECONDS": "120",
    }
    if spec.api.auth.anonymous:
        # The runtime refuses to serve without keys unless anonymous access is explicit.
        data["RAG_ALLOW_ANONYMOUS"] = "true"
    if spec.ingestion.chunk_tokens is not None:
        data["RAG_CHUNK_TOKENS"] = str(spec.ingestion.chunk_tokens)
    if spec.embedding.model_path:
        data["RAG_EMBEDDING_MODEL_PATH"] = spec.embedding.model_path
    if spec.generation.base_url:
        provider = spec.generation.provider
        key = (
            "RAG_ANTHROPIC_BASE_URL"
            if provider == GenerationProvider.ANTHROPIC
            else ("RAG_OPENAI_BASE_URL")
        )
        data[key] = spec.generation.base_url
    if store_mode(rs, "neo4j") == "managed":
        data["RAG_NEO4J_URI"] = f"bolt://{child_name(rs, 'neo4j')}:7687"
        data["RAG_NEO4J_USER"] = "neo4j"
    return data


def _from_secret(env: str, ref: SecretKeyRef | tuple[str, str]) -> dict[str, Any]:
    name, key = (ref.name, ref.key) if isinstance(ref, SecretKeyRef) else ref
    return {"name": env, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}


def runtime_secret_env(rs: RagSystem) -> list[dict[str, Any]]:
    """Env entries that come from Secrets (generated credentials or the user's)."""
    spec = rs.spec
    creds = credentials_name(rs)
    env: list[dict[str, Any]] = []
    if spec.postgres.external is not None:
        env.append(_from_secret("RAG_DATABASE_URL", spec.postgres.external.connection_secret_ref))
    else:
        env.append(_from_secret("RAG_DATABASE_URL", (creds, "database-url")))
    mode = store_mode(rs, "redis")
    if mode == "managed":
        env.append(_from_secret("RAG_REDIS_URL", (creds, "redis-url")))
    elif mode == "external" and spec.redis.external is not None:
        env.append(_from_secret("RAG_REDIS_URL", spec.redis.external.connection_secret_ref))
    mode = store_mode(rs, "neo4j")
    if mode == "managed":
        env.append(_from_secret("RAG_NEO4J_PASSWORD", (creds, "neo4j-password")))
    elif mode == "external" and spec.neo4j.external is not None:
        env.append(_from_secret("RAG_NEO4J_URI", spec.neo4j.external.connection_secret_ref))
        if spec.neo4j.external.password_secret_ref is not None:
            env.append(_from_secret("RAG_NEO4J_PASSWORD", spec.neo4j.external.password_secret_ref))
    gen = spec.generation
    if gen.api_key_secret_ref is not None and gen.provider != GenerationProvider.NONE:
        name = (
            "RAG_ANTHROPIC_API_KEY"
            if gen.provider == GenerationProvider.ANTHROPIC
            else "RAG_OPENAI_API_KEY"
        )
        env.append(_from_secret(name, gen.api_key_secret_ref))
    emb = spec.embedding
    if (
        emb.provider == EmbeddingProvider.OPENAI
        and emb.api_key_secret_ref is not None
        and not any(e["name"] == "RAG_OPENAI_API_KEY" for e in env)
    ):
        env.append(_from_secret("RAG_OPENAI_API_KEY", emb.api_key_secret_ref))
    if spec.api.api_keys_secret_ref is not None:
        env.append(_from_secret("RAG_API_KEYS", spec.api.api_keys_secret_ref))
    elif not spec.api.auth.anonymous:
        env.append(_from_secret("RAG_API_KEYS", (api_keys_name(rs), API_KEYS_KEY)))
    return env


def secret_references(rs: RagSystem) -> list[SecretReference]:
    """Every user Secret the system needs, with the spec field that names it."""
    spec = rs.spec
    refs: list[SecretReference] = []
    for store in STORES:
        if store_mode(rs, store) != "external":
            continue
        external = getattr(spec, store).external
        ref = external.connection_secret_ref
        refs.append(
            SecretReference(f"spec.{store}.external.connectionSecretRef", ref.name, ref.key)
        )
        if external.password_secret_ref is not None:
            pw = external.password_secret_ref
            refs.append(
                SecretReference(f"spec.{store}.external.passwordSecretRef", pw.name, pw.key)
            )
    gen = spec.generation
    if gen.provider != GenerationProvider.NONE and gen.api_key_secret_ref is not None:
        ref = gen.api_key_secret_ref
        refs.append(SecretReference("spec.generation.apiKeySecretRef", ref.name, ref.key))
    emb = spec.embedding
    if emb.provider == EmbeddingProvider.OPENAI and emb.api_key_secret_ref is not None:
        ref = emb.api_key_secret_ref
        refs.append(SecretReference("spec.embedding.apiKeySecretRef", ref.name, ref.key))
    if spec.api.api_keys_secret_ref is not None:
        ref = spec.api.api_keys_secret_ref
        refs.append(SecretReference("spec.api.apiKeysSecretRef", ref.name, ref.key))
    s3 = spec.backup.destination.s3 if spec.backup is not None else None
    if s3 is not None:
        path = "spec.backup.destination.s3.credentialsSecretRef"
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            refs.append(SecretReference(path, s3.credentials_secret_ref.name, key))
    for i, pull in enumerate(spec.image.pull_secrets):
        refs.append(SecretReference(f"spec.image.pullSecrets[{i}]", pull.name, None))
    return refs
