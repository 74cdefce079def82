"""Collections and documents: create, read, list, delete; queueing, claiming and retrying
documents for ingestion."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from rag_runtime.errors import ConflictError, NotFoundError, ServiceUnavailableError
from rag_runtime.store.chunks import ChunkStore
from rag_runtime.store.rows import (
    Accepted,
    Collection,
    Document,
    collection_from_row,
    content_hash,
    document_from_row,
)

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
# Fails unfinished documents that used up their attempts, keeping the last error.
_GIVE_UP = (
    "UPDATE documents SET status = 'failed', updated_at = now(), error = 'gave up after ' "
    "|| attempts || ' attempts' || coalesce(' (last: ' || error || ')', '') "
    "WHERE status IN ('queued', 'processing') AND attempts >= %s"
)
# What describes an upload besides its content (as migration 0003 computes it).
_IDENTITY = (
    "encode(sha256(convert_to(jsonb_build_array(%(title)s::text, %(source)s::text, "
    "%(metadata)s::jsonb)::text, 'UTF8')), 'hex')"
)


class Catalog(ChunkStore):
    """Collections and documents; deleting a document removes its chunks (ChunkStore)."""

    _graph_scope: str | None = None

    async def graph_scope(self) -> str:
        """This database's graph scope (migration 0004), read once: its nodes in Neo4j."""
        if self._graph_scope is None:
            try:
                async with self.db.connection() as conn:
                    cur = await conn.execute("SELECT id FROM graph_scope")
                    row = await cur.fetchone()
            except psycopg.errors.UndefinedTable as exc:
                raise ServiceUnavailableError("graph scope unknown: schema behind 0004") from exc
            if row is None:
                raise ServiceUnavailableError("graph scope unknown: graph_scope has no row")
            self._graph_scope = str(row["id"])
        return self._graph_scope

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
        return collection_from_row(row)

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
        return collection_from_row(row)

    async def list_collections(self) -> list[Collection]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT c.*, (SELECT count(*) FROM documents d WHERE d.collection_id = c.id) "
                "AS document_count FROM collections c ORDER BY c.name"
            )
            rows = await cur.fetchall()
        return [collection_from_row(r) for r in rows]

    async def delete_collection(self, name: str) -> Collection:
        async with self.db.connection() as conn:
            cur = await conn.execute("DELETE FROM collections WHERE name = %s RETURNING *", (name,))
            row = await cur.fetchone()
        if row is None:
            raise NotFoundError(f"collection {name!r} not found")
        return collection_from_row(row)

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
                "DO UPDATE SET status = 'queued', error = NULL, attempts = 0, updated_at = now() "
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
        doc = document_from_row(row)
        if written is None:
            return doc, Accepted.EXISTING
        return doc, Accepted.CREATED if written["inserted"] else Accepted.REQUEUED

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
                    "UPDATE documents SET status = 'queued', error = NULL, attempts = 0, "
                    "updated_at = now() WHERE collection_id = %s AND status = 'failed'{} "
                    "RETURNING id"
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
        return document_from_row(row)

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
        return [document_from_row(r) for r in rows], int(total["n"])

    async def delete_document(self, collection: Collection, document_id: uuid.UUID) -> Document:
        """Delete a document with its chunks and vectors, and take it out of the statistics."""
        async with self.db.transaction() as conn:
            if not await self._lock_collection(conn, collection.id):
                raise NotFoundError(f"collection {collection.name!r} not found")
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
        return document_from_row(row)

    async def claim_document(
        self, document_id: uuid.UUID, *, max_attempts: int
    ) -> tuple[Document, Collection] | None:
        """Mark a queued (or interrupted) document as processing, counting the attempt; None
        if gone, done, or out of attempts (then it is failed for good, with the last error)."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "UPDATE documents SET status = 'processing', attempts = attempts + 1, "
                "updated_at = now() WHERE id = %s "
                "AND status IN ('queued', 'processing') AND attempts < %s RETURNING id",
                (document_id, max_attempts),
            )
            if await cur.fetchone() is None:
                await conn.execute(_GIVE_UP + " AND id = %s", (max_attempts, document_id))
                return None
        doc = await self.get_document(document_id)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT * FROM collections WHERE id = %s", (doc.collection_id,)
            )
            row = await cur.fetchone()
        assert row is not None
        return doc, collection_from_row(row)

    async def set_status(
        self, document_id: uuid.UUID, status: str, error: str | None = None
    ) -> None:
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE documents SET status = %s, error = %s, updated_at = now() "
                "WHERE id = %s AND status <> 'ready'",
                (status, error, document_id),
            )

    async def pending_documents(
        self, *, older_than_s: float, max_attempts: int, limit: int = 1000
    ) -> list[uuid.UUID]:
        """Documents to queue again: unfinished ones; those out of attempts are failed."""
        async with self.db.connection() as conn:
            await conn.execute(_GIVE_UP, (max_attempts,))
            cur = await conn.execute(
                "SELECT id FROM documents WHERE status IN ('queued', 'processing') "
                "AND updated_at < now() - make_interval(secs => %s) "
                "ORDER BY updated_at LIMIT %s",
                (older_than_s, limit),
            )
            return [r["id"] for r in await cur.fetchall()]

    async def collection_ids(self) -> set[int]:
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT id FROM collections")
            return {int(r["id"]) for r in await cur.fetchall()}

    async def existing_documents(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these documents exist."""
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT id FROM documents WHERE id = ANY(%s)", (ids,))
            return {r["id"] for r in await cur.fetchall()}

    async def counts(self) -> dict[str, Any]:
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT status, count(*) AS n FROM documents GROUP BY status")
            docs = {r["status"]: int(r["n"]) for r in await cur.fetchall()}
            cur = await conn.execute("SELECT coalesce(sum(chunk_count), 0) AS n FROM collections")
            row = await cur.fetchone()
        assert row is not None
        return {"documents": docs, "chunks": int(row["n"])}

    # Retrieval ---------------------------------------------------------------------------
