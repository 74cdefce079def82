"""The store's typed rows and how they are read from Postgres rows."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class Collection:
    id: int
    name: str
    description: str
    embedding_model: str
    embedding_dimensions: int
    chunk_count: int
    created_at: datetime
    document_count: int = 0
    version: int = 0  # bumped in the transaction of every change to its chunks


@dataclass(frozen=True)
class Document:
    id: uuid.UUID
    collection_id: int
    collection: str
    title: str
    source: str | None
    content_type: str
    content_hash: str
    metadata: dict[str, Any]
    status: str
    error: str | None
    attempts: int
    chunk_count: int
    created_at: datetime
    updated_at: datetime
    content: str | None = None
    duplicate_of: uuid.UUID | None = None


class Accepted(StrEnum):
    """What `create_document` did with an upload."""

    CREATED = "created"  # a new document, queued
    REQUEUED = "requeued"  # a re-send of a document that had failed: queued again
    EXISTING = "existing"  # a re-send of a queued, processing or ready document


@dataclass(frozen=True)
class ChunkRow:
    id: int
    document_id: uuid.UUID
    document_title: str
    ordinal: int
    text: str
    metadata: dict[str, Any]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def collection_from_row(row: dict[str, Any]) -> Collection:
    return Collection(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        embedding_model=row["embedding_model"],
        embedding_dimensions=row["embedding_dimensions"],
        chunk_count=row["chunk_count"],
        created_at=row["created_at"],
        document_count=row.get("document_count", 0) or 0,
        version=int(row.get("version", 0) or 0),
    )


def document_from_row(row: dict[str, Any]) -> Document:
    return Document(
        id=row["id"],
        collection_id=row["collection_id"],
        collection=row["collection"],
        title=row["title"],
        source=row["source"],
        content_type=row["content_type"],
        content_hash=row["content_hash"],
        metadata=row["metadata"],
        status=row["status"],
        error=row["error"],
        attempts=row["attempts"],
        chunk_count=row["chunk_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        content=row.get("content"),
        duplicate_of=row.get("duplicate_of"),
    )


# The earliest earlier document of the collection with identical content, if any.
