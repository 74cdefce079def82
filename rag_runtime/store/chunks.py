"""Chunks and vectors: writing a document's chunks (with their postings and the collection's
statistics and change version), removing them, and vector search (pgvector HNSW)."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from rag_runtime.chunking import Chunk
from rag_runtime.db import Database
from rag_runtime.domain import Scored
from rag_runtime.embedding import Vectors
from rag_runtime.store.rows import ChunkRow, Collection, Document
from rag_runtime.store.sql import TEXT_CONFIG, filter_sql

REMOVED_RETAIN_VERSIONS = 10_000  # change versions whose removed chunks stay on record


class ChunkStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._indexed_dims: set[int] = {384}
        self._writers: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

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

    async def bump_version(self, collection_id: int) -> None:
        """A change outside the chunks (the graph) that cached results must not outlive."""
        async with self.db.transaction() as conn:
            await self._bump_version(conn, collection_id)

    async def _lock_collection(
        self, conn: psycopg.AsyncConnection[Any], collection_id: int
    ) -> bool:
        """Lock the collection's row for this transaction; False if it is gone.

        Every writer takes the collection row before any document row, the order a
        collection delete takes them in (its row, then its documents by cascade): a writer
        holding a document while it waited for the collection would deadlock with that delete.
        """
        cur = await conn.execute(
            "SELECT id FROM collections WHERE id = %s FOR NO KEY UPDATE", (collection_id,)
        )
        return await cur.fetchone() is not None

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

    async def write_chunks(
        self, document: Document, chunks: list[Chunk], vectors: Vectors, *, ready: bool = True
    ) -> list[int] | None:
        """Store a document's chunks (and mark it ready); None if it was deleted meanwhile."""
        # Writers of one collection take turns on its row lock; waiting for the turn here
        # rather than inside a transaction keeps one pooled connection per collection busy,
        # not one per job in flight.
        async with self._writers[document.collection_id], self.db.transaction() as conn:
            if not await self._lock_collection(conn, document.collection_id):
                return None
            cur = await conn.execute(
                "SELECT id FROM documents WHERE id = %s FOR UPDATE", (document.id,)
            )
            if await cur.fetchone() is None:
                return None
            version = await self._bump_version(conn, document.collection_id)
            await self._remove_chunks(conn, document.collection_id, document.id, version)
            await self._insert_chunk_rows(conn, document, chunks, vectors, version)
            await self._index_terms(conn, document)
            await conn.execute(
                "UPDATE documents SET status = CASE WHEN %s THEN 'ready' ELSE status END, "
                "error = NULL, chunk_count = %s, updated_at = now() WHERE id = %s",
                (ready, len(chunks), document.id),
            )
            cur = await conn.execute(
                "SELECT id FROM chunks WHERE document_id = %s ORDER BY ordinal", (document.id,)
            )
            return [r["id"] for r in await cur.fetchall()]

    async def _insert_chunk_rows(
        self,
        conn: psycopg.AsyncConnection[Any],
        document: Document,
        chunks: list[Chunk],
        vectors: Vectors,
        version: int,
    ) -> None:
        """The chunk rows with their text search vectors and embeddings."""
        dims = int(vectors.shape[1]) if len(vectors) else 0
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

    async def _index_terms(self, conn: psycopg.AsyncConnection[Any], document: Document) -> None:
        """The collection's totals, document frequencies and the document's postings."""
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
