"""Postgres store: collections, documents, chunks (pgvector + full text) and term statistics.

Every statement lives here; callers get typed rows back.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from rag_runtime import keyword
from rag_runtime.chunking import Chunk
from rag_runtime.db import Database
from rag_runtime.embedding import Vectors
from rag_runtime.errors import ConflictError, InvalidInputError, NotFoundError
from rag_runtime.keyword_index import KeywordIndex

TEXT_CONFIG = "english"  # stemming and stopwords for full-text search
REMOVED_RETAIN_VERSIONS = 10_000  # change versions whose removed chunks stay on record
KEYWORD_INDEXES = 32  # collections whose keyword index a process keeps in memory
KEYWORD_MAX_DEAD = 0.3  # share of removed chunks an index keeps before it reloads


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


@dataclass
class Scored:
    chunk_id: int
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def filter_sql(filters: dict[str, Any] | None) -> tuple[sql.Composable, list[Any]]:
    """Metadata filters as SQL on `metadata` (GIN, jsonb_path_ops).

    `{"k": v}` means equal; `{"k": {"$in": [a, b]}}` means one of.
    """
    if not filters:
        return sql.SQL(""), []
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    for key, value in filters.items():
        if isinstance(value, dict):
            if set(value) != {"$in"} or not isinstance(value["$in"], list):
                raise InvalidInputError(
                    f"filter {key!r}: use a value or {{'$in': [values]}}", field="filters"
                )
            options = [sql.SQL("metadata @> %s") for _ in value["$in"]]
            params.extend(Jsonb({key: v}) for v in value["$in"])
            clauses.append(
                sql.SQL("({})").format(sql.SQL(" OR ").join(options))
                if options
                else sql.SQL("false")
            )
        else:
            clauses.append(sql.SQL("metadata @> %s"))
            params.append(Jsonb({key: value}))
    return sql.SQL(" AND ") + sql.SQL(" AND ").join(clauses), params


def _collection(row: dict[str, Any]) -> Collection:
    return Collection(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        embedding_model=row["embedding_model"],
        embedding_dimensions=row["embedding_dimensions"],
        chunk_count=row["chunk_count"],
        created_at=row["created_at"],
        document_count=row.get("document_count", 0) or 0,
    )


def _document(row: dict[str, Any]) -> Document:
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
_DUPLICATE_OF = (
    "(SELECT o.id FROM documents o WHERE o.collection_id = d.collection_id "
    "AND o.content_hash = d.content_hash AND (o.created_at, o.id) < (d.created_at, d.id) "
    "ORDER BY o.created_at, o.id LIMIT 1) AS duplicate_of"
)
_DOC_COLUMNS = sql.SQL(
    "d.id, d.collection_id, c.name AS collection, d.title, d.source, d.content_type, "
    "d.content_hash, d.metadata, d.status, d.error, d.attempts, d.chunk_count, "
    "d.created_at, d.updated_at, " + _DUPLICATE_OF
)
# What describes an upload besides its content (as migration 0003 computes it).
_IDENTITY = (
    "encode(sha256(convert_to(jsonb_build_array(%(title)s::text, %(source)s::text, "
    "%(metadata)s::jsonb)::text, 'UTF8')), 'hex')"
)


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._indexed_dims: set[int] = {384}
        self._keyword: dict[int, tuple[KeywordIndex, asyncio.Lock]] = {}
        self._writers: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    # Collections -------------------------------------------------------------------------

    async def create_collection(
        self, name: str, *, description: str, model: str, dimensions: int
    ) -> Collection:
        await self.ensure_vector_index(dimensions)
        async with self.db.connection() as conn:
            try:
                cur = await conn.execute(
                    "INSERT INTO collections (name, description, embedding_model, "
                    "embedding_dimensions) VALUES (%s, %s, %s, %s) RETURNING *",
                    (name, description, model, dimensions),
                )
            except psycopg.errors.UniqueViolation as exc:
                raise ConflictError(f"collection {name!r} already exists") from exc
            row = await cur.fetchone()
        assert row is not None
        return _collection(row)

    async def get_collection(self, name: str) -> Collection:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT c.*, (SELECT count(*) FROM documents d WHERE d.collection_id = c.id) "
                "AS document_count FROM collections c WHERE c.name = %s",
                (name,),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFoundError(f"collection {name!r} not found")
        return _collection(row)

    async def list_collections(self) -> list[Collection]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT c.*, (SELECT count(*) FROM documents d WHERE d.collection_id = c.id) "
                "AS document_count FROM collections c ORDER BY c.name"
            )
            rows = await cur.fetchall()
        return [_collection(r) for r in rows]

    async def delete_collection(self, name: str) -> Collection:
        async with self.db.connection() as conn:
            cur = await conn.execute("DELETE FROM collections WHERE name = %s RETURNING *", (name,))
            row = await cur.fetchone()
        if row is None:
            raise NotFoundError(f"collection {name!r} not found")
        return _collection(row)

    async def ensure_vector_index(self, dimensions: int) -> None:
        """HNSW (cosine) index for one embedding dimension, created once."""
        if dimensions in self._indexed_dims:
            return
        if dimensions > 2000:  # HNSW on `vector` supports up to 2,000 dimensions
            self._indexed_dims.add(dimensions)
            return
        stmt = sql.SQL(
            "CREATE INDEX IF NOT EXISTS {} ON chunks USING hnsw "
            "((embedding::vector({})) vector_cosine_ops) WHERE embedding_dim = {}"
        ).format(
            sql.Identifier(f"chunks_embedding_{dimensions}"),
            sql.Literal(dimensions),
            sql.Literal(dimensions),
        )
        async with self.db.connection() as conn:
            await conn.execute(stmt)
        self._indexed_dims.add(dimensions)

    # Documents ---------------------------------------------------------------------------

    async def create_document(
        self,
        collection: Collection,
        *,
        content: str,
        title: str,
        source: str | None,
        content_type: str,
        metadata: dict[str, Any],
    ) -> tuple[Document, Accepted]:
        """Insert a queued document, unless it is a re-send.

        A re-send (identical content, title, source and metadata) returns the existing
        document, queued again if it had failed. Identical content under another title,
        source or metadata is a document of its own, whose `duplicate_of` names the earlier one.
        """
        params = {
            "collection": collection.id,
            "title": title,
            "source": source,
            "content_type": content_type,
            "content": content,
            "digest": content_hash(content),
            "metadata": Jsonb(metadata),
        }
        async with self.db.connection() as conn:
            # xmax = 0 tells a fresh row from one the conflict clause updated.
            cur = await conn.execute(
                "INSERT INTO documents (collection_id, title, source, content_type, content, "
                "content_hash, identity_hash, metadata) VALUES (%(collection)s, %(title)s, "
                f"%(source)s, %(content_type)s, %(content)s, %(digest)s, {_IDENTITY}, "
                "%(metadata)s) ON CONFLICT (collection_id, content_hash, identity_hash) "
                "DO UPDATE SET status = 'queued', error = NULL, updated_at = now() "
                "WHERE documents.status = 'failed' RETURNING id, xmax = 0 AS inserted",
                params,
            )
            written = await cur.fetchone()
            cur = await conn.execute(
                sql.SQL(
                    "SELECT {} FROM documents d JOIN collections c ON c.id = d.collection_id "
                    "WHERE d.collection_id = %(collection)s AND d.content_hash = %(digest)s "
                    f"AND d.identity_hash = {_IDENTITY}"
                ).format(_DOC_COLUMNS),
                params,
            )
            row = await cur.fetchone()
        assert row is not None
        if written is None:
            return _document(row), Accepted.EXISTING
        return _document(row), Accepted.CREATED if written["inserted"] else Accepted.REQUEUED

    async def retry_documents(
        self, collection: Collection, document_ids: list[uuid.UUID] | None = None
    ) -> list[uuid.UUID]:
        """Queue failed documents again (those given, or every failed one); the ids queued."""
        where: sql.Composable = sql.SQL("")
        params: list[Any] = [collection.id]
        if document_ids is not None:
            where = sql.SQL(" AND id = ANY(%s)")
            params.append(document_ids)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                sql.SQL(
                    "UPDATE documents SET status = 'queued', error = NULL, updated_at = now() "
                    "WHERE collection_id = %s AND status = 'failed'{} RETURNING id"
                ).format(where),
                params,
            )
            return [r["id"] for r in await cur.fetchall()]

    async def get_document(
        self, document_id: uuid.UUID, *, collection: Collection | None = None
    ) -> Document:
        query: sql.Composed = sql.SQL(
            "SELECT {}, d.content FROM documents d JOIN collections c ON c.id = d.collection_id "
            "WHERE d.id = %s"
        ).format(_DOC_COLUMNS)
        params: list[Any] = [document_id]
        if collection is not None:
            query = query + sql.SQL(" AND d.collection_id = %s")
            params.append(collection.id)
        async with self.db.connection() as conn:
            cur = await conn.execute(query, params)
            row = await cur.fetchone()
        if row is None:
            raise NotFoundError(f"document {document_id} not found")
        return _document(row)

    async def list_documents(
        self, collection: Collection, *, limit: int, offset: int, status: str | None = None
    ) -> tuple[list[Document], int]:
        where: sql.Composable = sql.SQL("d.collection_id = %s")
        params: list[Any] = [collection.id]
        if status:
            where = where + sql.SQL(" AND d.status = %s")
            params.append(status)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                sql.SQL(
                    "SELECT {} FROM documents d JOIN collections c ON c.id = d.collection_id "
                    "WHERE {} ORDER BY d.created_at, d.id LIMIT %s OFFSET %s"
                ).format(_DOC_COLUMNS, where),
                [*params, limit, offset],
            )
            rows = await cur.fetchall()
            cur = await conn.execute(
                sql.SQL("SELECT count(*) AS n FROM documents d WHERE {}").format(where), params
            )
            total = await cur.fetchone()
        assert total is not None
        return [_document(r) for r in rows], int(total["n"])

    async def delete_document(self, collection: Collection, document_id: uuid.UUID) -> Document:
        """Delete a document with its chunks and vectors, and take it out of the statistics."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                sql.SQL(
                    "SELECT {} FROM documents d JOIN collections c ON c.id = d.collection_id "
                    "WHERE d.id = %s AND d.collection_id = %s FOR UPDATE OF d"
                ).format(_DOC_COLUMNS),
                (document_id, collection.id),
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFoundError(f"document {document_id} not found")
            await self._remove_chunks(conn, collection.id, document_id)
            await conn.execute("DELETE FROM documents WHERE id = %s", (document_id,))
        return _document(row)

    async def _bump_version(self, conn: psycopg.AsyncConnection[Any], collection_id: int) -> int:
        """Next change version of the collection; its row stays locked until commit."""
        cur = await conn.execute(
            "UPDATE collections SET version = version + 1 WHERE id = %s RETURNING version",
            (collection_id,),
        )
        row = await cur.fetchone()
        assert row is not None
        version = int(row["version"])
        if version % 100 == 0:  # now and then, forget old tombstones
            horizon = version - REMOVED_RETAIN_VERSIONS
            await conn.execute(
                "DELETE FROM removed_chunks WHERE collection_id = %s AND version <= %s",
                (collection_id, horizon),
            )
            await conn.execute(
                "UPDATE collections SET removed_since = greatest(removed_since, %s) WHERE id = %s",
                (horizon, collection_id),
            )
        return version

    async def _remove_chunks(
        self,
        conn: psycopg.AsyncConnection[Any],
        collection_id: int,
        document_id: uuid.UUID,
        version: int | None = None,
    ) -> None:
        """Remove a document's chunks, statistics and postings; record them as removed."""
        cur = await conn.execute(
            "SELECT count(*) AS n, coalesce(sum(length), 0) AS len FROM chunks "
            "WHERE document_id = %s",
            (document_id,),
        )
        stats = await cur.fetchone()
        assert stats is not None
        if not stats["n"]:
            return
        if version is None:
            version = await self._bump_version(conn, collection_id)
        await conn.execute(
            "UPDATE collections SET chunk_count = chunk_count - %s, "
            "total_length = total_length - %s WHERE id = %s",
            (stats["n"], stats["len"], collection_id),
        )
        await conn.execute(
            "UPDATE term_stats t SET df = t.df - d.n FROM ("
            " SELECT u.lexeme, count(*) AS n FROM chunks ch, unnest(ch.tsv) u"
            " WHERE ch.document_id = %s GROUP BY u.lexeme) d "
            "WHERE t.collection_id = %s AND t.lexeme = d.lexeme",
            (document_id, collection_id),
        )
        await conn.execute(
            "INSERT INTO removed_chunks (collection_id, version, chunk_id) "
            "SELECT %s, %s, id FROM chunks WHERE document_id = %s",
            (collection_id, version, document_id),
        )
        await conn.execute("DELETE FROM chunks WHERE document_id = %s", (document_id,))

    # Ingestion ---------------------------------------------------------------------------

    async def claim_document(self, document_id: uuid.UUID) -> tuple[Document, Collection] | None:
        """Mark a queued (or interrupted) document as processing; None if gone or done."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "UPDATE documents SET status = 'processing', attempts = attempts + 1, "
                "error = NULL, updated_at = now() WHERE id = %s "
                "AND status IN ('queued', 'processing') RETURNING id",
                (document_id,),
            )
            if await cur.fetchone() is None:
                return None
        doc = await self.get_document(document_id)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT * FROM collections WHERE id = %s", (doc.collection_id,)
            )
            row = await cur.fetchone()
        assert row is not None
        return doc, _collection(row)

    async def write_chunks(
        self, document: Document, chunks: list[Chunk], vectors: Vectors, *, ready: bool = True
    ) -> list[int] | None:
        """Store a document's chunks (and mark it ready); None if it was deleted meanwhile."""
        dims = int(vectors.shape[1]) if len(vectors) else 0
        # Writers of one collection take turns on its row lock; waiting for the turn here
        # rather than inside a transaction keeps one pooled connection per collection busy,
        # not one per job in flight.
        async with self._writers[document.collection_id], self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT id FROM documents WHERE id = %s FOR UPDATE", (document.id,)
            )
            if await cur.fetchone() is None:
                return None
            version = await self._bump_version(conn, document.collection_id)
            await self._remove_chunks(conn, document.collection_id, document.id, version)
            meta = Jsonb(document.metadata)
            async with conn.cursor() as c:
                await c.executemany(
                    "INSERT INTO chunks (document_id, collection_id, ordinal, text, tsv, length, "
                    "embedding, embedding_dim, metadata, version) "
                    f"SELECT %(doc)s, %(col)s, %(ord)s, %(text)s, v.tsv, "
                    "(SELECT coalesce(sum(cardinality(u.positions)), 0) FROM unnest(v.tsv) u), "
                    "%(emb)s, %(dim)s, %(meta)s, %(version)s "
                    f"FROM (SELECT to_tsvector('{TEXT_CONFIG}', %(text)s) AS tsv) v",
                    [
                        {
                            "doc": document.id,
                            "col": document.collection_id,
                            "ord": ch.ordinal,
                            "text": ch.text,
                            "emb": np.asarray(vec, dtype=np.float32),
                            "dim": dims,
                            "meta": meta,
                            "version": version,
                        }
                        for ch, vec in zip(chunks, vectors, strict=True)
                    ],
                )
            # The collection row serializes concurrent writers, so term upserts never deadlock.
            await conn.execute(
                "UPDATE collections c SET chunk_count = c.chunk_count + s.n, "
                "total_length = c.total_length + s.len FROM (SELECT count(*) AS n, "
                "coalesce(sum(length), 0) AS len FROM chunks WHERE document_id = %s) s "
                "WHERE c.id = %s",
                (document.id, document.collection_id),
            )
            # Document frequencies and postings in one statement: the upsert returns the
            # term ids the postings need.
            await conn.execute(
                "WITH lex AS MATERIALIZED (SELECT ch.id AS chunk_id, u.lexeme, "
                "greatest(cardinality(u.positions), 1) AS tf FROM chunks ch "
                "CROSS JOIN LATERAL unnest(ch.tsv) u WHERE ch.document_id = %s), "
                "terms AS (INSERT INTO term_stats (collection_id, lexeme, df) "
                "SELECT %s, lexeme, count(*) FROM lex GROUP BY lexeme ORDER BY lexeme "
                "ON CONFLICT (collection_id, lexeme) DO UPDATE SET df = term_stats.df + "
                "excluded.df RETURNING id, lexeme) "
                "INSERT INTO postings (chunk_id, term_id, tf) "
                "SELECT lex.chunk_id, terms.id, lex.tf FROM lex JOIN terms USING (lexeme)",
                (document.id, document.collection_id),
            )
            await conn.execute(
                "UPDATE documents SET status = CASE WHEN %s THEN 'ready' ELSE status END, "
                "error = NULL, chunk_count = %s, updated_at = now() WHERE id = %s",
                (ready, len(chunks), document.id),
            )
            cur = await conn.execute(
                "SELECT id FROM chunks WHERE document_id = %s ORDER BY ordinal", (document.id,)
            )
            return [r["id"] for r in await cur.fetchall()]

    async def set_status(
        self, document_id: uuid.UUID, status: str, error: str | None = None
    ) -> None:
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE documents SET status = %s, error = %s, updated_at = now() "
                "WHERE id = %s AND status <> 'ready'",
                (status, error, document_id),
            )

    async def pending_documents(self, *, older_than_s: float, limit: int = 1000) -> list[uuid.UUID]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM documents WHERE status IN ('queued', 'processing') "
                "AND updated_at < now() - make_interval(secs => %s) "
                "ORDER BY updated_at LIMIT %s",
                (older_than_s, limit),
            )
            return [r["id"] for r in await cur.fetchall()]

    async def counts(self) -> dict[str, Any]:
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT status, count(*) AS n FROM documents GROUP BY status")
            docs = {r["status"]: int(r["n"]) for r in await cur.fetchall()}
            cur = await conn.execute("SELECT coalesce(sum(chunk_count), 0) AS n FROM collections")
            row = await cur.fetchone()
        assert row is not None
        return {"documents": docs, "chunks": int(row["n"])}

    # Retrieval ---------------------------------------------------------------------------

    async def search_vector(
        self,
        collection: Collection,
        query: Vectors,
        *,
        k: int,
        filters: dict[str, Any] | None = None,
        ef_search: int = 100,
    ) -> list[Scored]:
        """Cosine top-k. HNSW with iterative scans keeps filtered searches at k results."""
        dims = collection.embedding_dimensions
        where, params = filter_sql(filters)
        vec = sql.SQL("embedding::vector({})").format(sql.Literal(dims))
        qvec = sql.SQL("%s::vector({})").format(sql.Literal(dims))
        stmt = sql.SQL(
            "SELECT id, 1 - ({vec} <=> {q}) AS score FROM chunks "
            "WHERE collection_id = %s AND embedding_dim = %s{where} "
            "ORDER BY {vec} <=> {q} LIMIT %s"
        ).format(vec=vec, q=qvec, where=where)
        q = np.asarray(query, dtype=np.float32)
        async with self.db.transaction() as conn:
            # Read at execution, so they hold for prepared statements too.
            await conn.execute(
                sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(max(ef_search, k)))
            )
            await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            cur = await conn.execute(stmt, [q, collection.id, dims, *params, q, k])
            rows = await cur.fetchall()
        hits = [Scored(r["id"], float(r["score"])) for r in rows]
        hits.sort(key=lambda h: -h.score)  # relaxed_order may return slightly out of order
        for h in hits:
            h.evidence = {"cosine_similarity": round(h.score, 6)}
        return hits

    async def search_keyword(
        self,
        collection: Collection,
        text: str,
        *,
        k: int,
        filters: dict[str, Any] | None = None,
    ) -> list[Scored]:
        """Exact BM25 top-k ('english': stemming, stopwords) from the in-memory index.

        The query's term statistics and the index's catch-up read one snapshot, so scores
        are those of exhaustive BM25 over the collection as of that snapshot.
        """
        current = await self._keyword_current(collection.id, text)
        if current is None or not current[1].terms:
            return []
        index, snapshot = current
        terms = [(t.id, t.idf) for t in snapshot.terms]
        if not filters:
            slots, scores = index.ranked(terms, snapshot.avgdl, k)
        else:
            slots, scores = index.ranked(terms, snapshot.avgdl, None)
            keep = await self._filter_slots(index, slots, k, filters)
            slots, scores = slots[keep], scores[keep]
        lexemes = {t.id: t.lexeme for t in snapshot.terms}
        return [
            Scored(
                r.chunk_id,
                r.score,
                {
                    "bm25": round(r.score, 6),
                    "matched_terms": sorted(lexemes[t] for t in r.term_ids),
                },
            )
            for r in index.describe(slots, scores, terms)
        ]

    async def _keyword_current(
        self, collection_id: int, text: str
    ) -> tuple[KeywordIndex, keyword.Snapshot] | None:
        """The query's statistics and the collection's index, caught up to the same snapshot."""
        index, lock = self._keyword_index(collection_id)
        async with self.db.transaction() as conn:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = await self._keyword_snapshot(conn, collection_id, text)
            if snapshot is None:
                return None
            if index.version < snapshot.version:
                async with lock:  # one catch-up at a time; others find it done
                    index = self._keyword_index(collection_id)[0]
                    if index.version < snapshot.version:
                        index = await self._catch_up(conn, collection_id, index, snapshot)
                        self._keyword[collection_id] = (index, lock)
        return index, snapshot

    async def warm_keyword_indexes(self) -> int:
        """Load the keyword indexes of the largest collections; how many were loaded."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM collections WHERE chunk_count > 0 "
                "ORDER BY chunk_count DESC LIMIT %s",
                (KEYWORD_INDEXES,),
            )
            ids = [int(r["id"]) for r in await cur.fetchall()]
        for collection_id in reversed(ids):  # the largest ends most recently used
            await self._keyword_current(collection_id, "")
        return len(ids)

    def _keyword_index(self, collection_id: int) -> tuple[KeywordIndex, asyncio.Lock]:
        entry = self._keyword.pop(collection_id, None) or (KeywordIndex(), asyncio.Lock())
        self._keyword[collection_id] = entry  # most recently used last
        while len(self._keyword) > KEYWORD_INDEXES:
            self._keyword.pop(next(iter(self._keyword)))
        return entry

    async def _keyword_snapshot(
        self, conn: psycopg.AsyncConnection[Any], collection_id: int, text: str
    ) -> keyword.Snapshot | None:
        cur = await conn.execute(
            "SELECT c.version, c.removed_since, c.chunk_count, c.total_length, "
            "coalesce(array_agg(t.id) FILTER (WHERE t.id IS NOT NULL), '{}') AS ids, "
            "coalesce(array_agg(t.lexeme) FILTER (WHERE t.id IS NOT NULL), '{}') AS lexemes, "
            "coalesce(array_agg(t.df) FILTER (WHERE t.id IS NOT NULL), '{}') AS dfs "
            "FROM collections c LEFT JOIN term_stats t ON t.collection_id = c.id AND t.df > 0 "
            f"AND t.lexeme IN (SELECT u.lexeme FROM unnest(to_tsvector('{TEXT_CONFIG}', %s)) u) "
            "WHERE c.id = %s GROUP BY c.id",
            (text, collection_id),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        return keyword.snapshot(
            version=int(row["version"]),
            removed_since=int(row["removed_since"]),
            chunks=int(row["chunk_count"]),
            total_length=int(row["total_length"]),
            terms=zip(row["ids"], row["lexemes"], row["dfs"], strict=True),
        )

    async def _catch_up(
        self,
        conn: psycopg.AsyncConnection[Any],
        collection_id: int,
        index: KeywordIndex,
        snapshot: keyword.Snapshot,
    ) -> KeywordIndex:
        """Bring the index to the snapshot's version: changes since its own, or a reload."""
        if index.version < snapshot.removed_since:
            index = KeywordIndex()  # the tombstones it needs are pruned: reload
        since = index.version
        if since < 0:  # a whole collection's postings aggregate in memory, not on disk
            await conn.execute("SET LOCAL work_mem = '256MB'")
        cur = await conn.execute(
            "SELECT coalesce(array_agg(id ORDER BY id), '{}') AS ids, "
            "coalesce(array_agg(length ORDER BY id), '{}') AS lengths FROM chunks "
            "WHERE collection_id = %s AND version > %s",
            (collection_id, since),
        )
        added = await cur.fetchone()
        cur = await conn.execute(
            "SELECT coalesce(array_agg(chunk_id), '{}') AS ids FROM removed_chunks "
            "WHERE collection_id = %s AND version > %s",
            (collection_id, since),
        )
        removed = await cur.fetchone()
        assert added is not None
        assert removed is not None
        postings = await _fetch_postings(conn, collection_id, since)
        index.apply(
            snapshot.version,
            chunk_ids=np.asarray(added["ids"], dtype=np.int64),
            lengths=np.asarray(added["lengths"], dtype=np.float64),
            posting_chunks=postings["chunk"].astype(np.int64),
            posting_terms=postings["term"].astype(np.int64),
            posting_tfs=postings["tf"],
            removed=np.asarray(removed["ids"], dtype=np.int64),
        )
        if index.dead_fraction() > KEYWORD_MAX_DEAD:  # mostly removed chunks: start afresh
            return await self._catch_up(conn, collection_id, KeywordIndex(), snapshot)
        return index

    async def _filter_slots(
        self,
        index: KeywordIndex,
        slots: npt.NDArray[np.intp],
        k: int,
        filters: dict[str, Any],
    ) -> npt.NDArray[np.intp]:
        """Positions in `slots` (best first) of the first k chunks that pass the filters."""
        where, params = filter_sql(filters)
        stmt = sql.SQL("SELECT id FROM chunks WHERE id = ANY(%s){}").format(where)
        keep: list[int] = []
        start, step = 0, max(4 * k, 256)
        async with self.db.connection() as conn:
            while start < len(slots) and len(keep) < k:
                batch = slots[start : start + step]
                ids = index.chunk_ids[batch]
                cur = await conn.execute(stmt, [ids.tolist(), *params])
                passed = {r["id"] for r in await cur.fetchall()}
                keep += [start + i for i, cid in enumerate(ids.tolist()) if cid in passed]
                start, step = start + len(batch), step * 4
        return np.asarray(keep[:k], dtype=np.intp)

    async def fetch_chunks(self, ids: list[int]) -> dict[int, ChunkRow]:
        if not ids:
            return {}
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT ch.id, ch.document_id, d.title, ch.ordinal, ch.text, ch.metadata "
                "FROM chunks ch JOIN documents d ON d.id = ch.document_id "
                "WHERE ch.id = ANY(%s)",
                (ids,),
            )
            rows = await cur.fetchall()
        return {
            r["id"]: ChunkRow(
                r["id"], r["document_id"], r["title"], r["ordinal"], r["text"], r["metadata"]
            )
            for r in rows
        }

    async def chunk_ids_of_document(self, document_id: uuid.UUID) -> list[int]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM chunks WHERE document_id = %s ORDER BY ordinal", (document_id,)
            )
            return [r["id"] for r in await cur.fetchall()]


POSTING_ROW = np.dtype([("chunk", ">i8"), ("term", ">i8"), ("tf", ">i4")])
_POSTINGS_PER_ROW = 1024  # chunks whose postings travel together as one bytea


async def _fetch_postings(
    conn: psycopg.AsyncConnection[Any], collection_id: int, since: int
) -> npt.NDArray[Any]:
    """Postings of the collection's chunks newer than `since`, packed server-side.

    Rows of (chunk, term, tf) as big-endian binary, a bytea per range of chunk ids: a few
    hundred rows instead of millions, which is what makes loading a large collection quick.
    """
    cur = await conn.execute(
        "SELECT string_agg(int8send(p.chunk_id) || int8send(p.term_id) || int4send(p.tf), "
        "''::bytea) AS rows FROM chunks ch JOIN postings p ON p.chunk_id = ch.id "
        "WHERE ch.collection_id = %s AND ch.version > %s GROUP BY ch.id / %s",
        (collection_id, since, _POSTINGS_PER_ROW),
    )
    return parse_postings(b"".join([r["rows"] for r in await cur.fetchall()]))


def parse_postings(data: bytes) -> npt.NDArray[Any]:
    """(chunk, term, tf) rows from the packed form `_fetch_postings` reads."""
    if len(data) % POSTING_ROW.itemsize:
        raise ValueError(
            f"packed postings of {len(data)} bytes are not whole {POSTING_ROW.itemsize}-byte rows"
        )
    return np.frombuffer(data, dtype=POSTING_ROW)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
