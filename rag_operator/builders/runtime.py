"""The runtime's configuration: plain settings (ConfigMap) and secret env references.

Every name here must be declared by the runtime's settings model (`RAG_*`); a unit test
checks the output against `rag_runtime.settings.env_names()`.
"""

from __future__ import annotations

from typing import Any

from rag_operator.builders.common import (
    DATA_DIR,
    STORES,
    child_name,
    config_name,
    credentials_name,
    stable_hash,
    store_mode,
)
from rag_operator.models import (
    EmbeddingProvider,
    GenerationProvider,
    OperatorConfig,
    RagSystem,
    SecretKeyRef,
)


def runtime_settings(rs: RagSystem, cfg: OperatorConfig) -> dict[str, str]:
    """Non-secret settings shared by the API and the worker."""
    spec = rs.spec
    data = {
        "RAG_HOST": "0.0.0.0",
        "RAG_PORT": str(cfg.api_port),
        "RAG_LOG_LEVEL": "info",
        "RAG_DATA_DIR": DATA_DIR,
        "RAG_EMBEDDING_PROVIDER": spec.embedding.provider.value,
        "RAG_EMBEDDING_MODEL": spec.embedding.model,
        "RAG_EMBEDDING_DIMENSIONS": str(spec.embedding.dimensions),
        "RAG_GENERATION_PROVIDER": spec.generation.provider.value,
        "RAG_GENERATION_MODEL": spec.generation.model,
        "RAG_RETRIEVAL_STRATEGY": spec.retrieval.default_strategy.value,
        "RAG_TOP_K": str(spec.retrieval.top_k),
        "RAG_SIMILARITY_THRESHOLD": repr(float(spec.retrieval.similarity_threshold)),
        "RAG_WORKER_CONCURRENCY": str(spec.worker.concurrency),
    }
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
    return env


def config_hash(rs: RagSystem, cfg: OperatorConfig) -> str:
    """Changes whenever the runtime's configuration changes; rolls the pods."""
    return stable_hash(
        {
            "config": config_name(rs),
            "settings": runtime_settings(rs, cfg),
            "secrets": runtime_secret_env(rs),
        }
    )


def secret_references(rs: RagSystem) -> list[tuple[str, str, str | None]]:
    """(spec field path, Secret name, key or None) for every user Secret the system needs."""
    spec = rs.spec
    refs: list[tuple[str, str, str | None]] = []
    for store in STORES:
        if store_mode(rs, store) != "external":
            continue
        external = getattr(spec, store).external
        ref = external.connection_secret_ref
        refs.append((f"spec.{store}.external.connectionSecretRef", ref.name, ref.key))
        if external.password_secret_ref is not None:
            pw = external.password_secret_ref
            refs.append((f"spec.{store}.external.passwordSecretRef", pw.name, pw.key))
    gen = spec.generation
    if gen.provider != GenerationProvider.NONE and gen.api_key_secret_ref is not None:
        ref = gen.api_key_secret_ref
        refs.append(("spec.generation.apiKeySecretRef", ref.name, ref.key))
    emb = spec.embedding
    if emb.provider == EmbeddingProvider.OPENAI and emb.api_key_secret_ref is not None:
        ref = emb.api_key_secret_ref
        refs.append(("spec.embedding.apiKeySecretRef", ref.name, ref.key))
    if spec.api.api_keys_secret_ref is not None:
        ref = spec.api.api_keys_secret_ref
        refs.append(("spec.api.apiKeysSecretRef", ref.name, ref.key))
    for i, pull in enumerate(spec.image.pull_secrets):
        refs.append((f"spec.image.pullSecrets[{i}]", pull.name, None))
    return refs
