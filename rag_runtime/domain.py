"""The runtime's vocabulary: the choices settings, requests and responses name."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RetrievalStrategy(StrEnum):
    VECTOR = "vector"
    KEYWORD = "keyword"
    HYBRID = "hybrid"
    GRAPH = "graph"


class EmbeddingProvider(StrEnum):
    SENTENCE_TRANSFORMERS = "sentence-transformers"
    OPENAI = "openai"


class FusionMethod(StrEnum):
    RRF = "rrf"
    WEIGHTED = "weighted"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class GenerationProvider(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    NONE = "none"


class DocumentStatus(StrEnum):
    """Where a document is in ingestion."""

    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


@dataclass
class Scored:
    """A search candidate: a chunk, its score and why (per strategy)."""

    chunk_id: int
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)
