"""Postgres store: collections, documents, chunks (pgvector + full text) and term statistics.

Every statement lives in this package, one module per concern; callers get typed rows back:
- catalog: collections and documents (and the ingestion states of documents);
- chunks: chunks and vectors, with the postings, statistics and change log they keep up;
- keyword_cache: the per-process keyword indexes, caught up from that change log.
"""

from __future__ import annotations

from rag_runtime.db import Database
from rag_runtime.domain import Scored
from rag_runtime.store.catalog import Catalog
from rag_runtime.store.keyword_cache import (
    KEYWORD_CACHE_BYTES,
    KEYWORD_INDEXES,
    POSTING_ROW,
    KeywordIndexes,
    parse_postings,
)
from rag_runtime.store.rows import Accepted, ChunkRow, Collection, Document, content_hash
from rag_runtime.store.sql import TEXT_CONFIG, filter_sql

__all__ = [
    "KEYWORD_CACHE_BYTES",
    "KEYWORD_INDEXES",
    "POSTING_ROW",
    "TEXT_CONFIG",
    "Accepted",
    "ChunkRow",
    "Collection",
    "Document",
    "Scored",
    "Store",
    "content_hash",
    "filter_sql",
    "parse_postings",
]


class Store(Catalog, KeywordIndexes):
    """The whole store over one connection pool."""

    def __init__(self, db: Database, *, keyword_cache_bytes: int = KEYWORD_CACHE_BYTES) -> None:
        Catalog.__init__(self, db)
        KeywordIndexes.__init__(self, db, max_bytes=keyword_cache_bytes)
