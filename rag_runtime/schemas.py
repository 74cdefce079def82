"""Request and response bodies of the HTTP API (also what the CLI prints)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag_runtime.domain import DocumentStatus, FusionMethod, RetrievalStrategy

NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectionCreate(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Collection name (tenant or use).")
    description: str = Field("", max_length=1000)


class CollectionOut(BaseModel):
    name: str
    description: str
    embedding_model: str
    embedding_dimensions: int
    documents: int
    chunks: int
    created_at: datetime


class DocumentCreate(Strict):
    text: str = Field(description="Document text (plain or markdown).")
    title: str = Field("", max_length=1000)
    source: str | None = Field(None, max_length=2000)
    metadata: dict[str, Any] = Field(default_factory=dict)
    content_type: Literal["text/plain", "text/markdown", "text/html"] = "text/plain"


class DocumentOut(BaseModel):
    id: uuid.UUID
    collection: str
    title: str
    source: str | None
    content_type: str
    content_hash: str
    metadata: dict[str, Any]
    status: DocumentStatus
    error: str | None
    attempts: int
    chunks: int
    created_at: datetime
    updated_at: datetime
    duplicate_of: uuid.UUID | None = Field(
        None,
        description="The earliest earlier document of the collection with identical content "
        "(stored separately, because its title, source or metadata differ); null if none.",
    )


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    total: int
    limit: int
    offset: int


class RetryOut(BaseModel):
    requeued: int = Field(description="Failed documents queued again.")
    documents: list[uuid.UUID] = Field(description="Their ids.")


class SearchRequest(Strict):
    collection: str = Field(pattern=NAME_PATTERN)
    query: str = Field(min_length=1, max_length=4000)
    strategy: RetrievalStrategy | None = Field(None, description="Default from settings.")
    top_k: int | None = Field(None, ge=1, le=1000)
    filters: dict[str, Any] | None = Field(
        None, description="Metadata filters: {key: value} or {key: {'$in': [values]}}."
    )
    similarity_threshold: float | None = Field(None, ge=-1.0, le=1.0)
    fusion: FusionMethod | None = None
    rrf_k: int | None = Field(None, ge=1, le=1000)
    vector_weight: float | None = Field(None, ge=0.0, le=1.0)


class SearchHit(BaseModel):
    chunk_id: int
    document_id: uuid.UUID
    document_title: str
    ordinal: int
    text: str
    metadata: dict[str, Any]
    score: float
    evidence: dict[str, Any]


class SearchResponse(BaseModel):
    collection: str
    strategy: RetrievalStrategy
    results: list[SearchHit]
    cached: bool = False
    took_ms: float


class QueryRequest(SearchRequest):
    stream: bool = Field(False, description="Answer as server-sent events.")
    max_tokens: int = Field(512, ge=1, le=8192)


class Citation(BaseModel):
    index: int = Field(description="1-based position in `results`.")
    chunk_id: int
    document_id: uuid.UUID


class QueryResponse(BaseModel):
    answer: str
    citations: list[Citation]
    results: list[SearchHit]
    provider: str
    model: str
    strategy: RetrievalStrategy
