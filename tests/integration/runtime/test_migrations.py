"""`rag-runtime migrate`: versioned alembic migrations under an advisory lock.

Covers: `--check` exits non-zero on an empty database, `migrate` brings it to head, running
again (or several at once) changes nothing, the schema has the HNSW, GIN and postings
indexes, upgrading a database that already holds chunks backfills their postings, upgrading
one that holds documents keeps their re-sends recognised, and a downgrade that would have to
drop documents with identical content refuses, naming the collection.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import psycopg
import pytest
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from hack.services import PostgresService
from rag_runtime import migrate
from rag_runtime.cli import app
from rag_runtime.db import Database
from rag_runtime.store import Accepted, Store

pytestmark = pytest.mark.integration


def run(database_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["migrate", *args], env={"RAG_DATABASE_URL": database_url})
    return result.exit_code, result.output


def test_check_fails_when_the_schema_is_behind(database_url: str) -> None:
    code, out = run(database_url, "--check")
    assert code == 1
    assert "behind" in out


def test_migrate_applies_then_check_passes(database_url: str) -> None:
    assert run(database_url)[0] == 0
    code, out = run(database_url, "--check")
    assert code == 0
    assert migrate.head_revision() in out


def test_migrate_is_idempotent_and_safe_concurrently(
    postgres: PostgresService, database_url: str
) -> None:
    fresh = postgres.create_database("rt_migrate_race")
    code = "import sys; from rag_runtime import migrate; print(migrate.upgrade(sys.argv[1]))"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, fresh], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert all(f"current='{migrate.head_revision()}'" in out for out in outputs)
    assert migrate.schema_status(fresh).up_to_date
    assert run(database_url)[0] == 0


def test_schema_has_vector_and_text_indexes(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'chunks'"
        ).fetchall()
        version = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
    defs = {name: sql for name, sql in rows}
    assert "USING hnsw" in defs["chunks_embedding_384"]
    assert "vector_cosine_ops" in defs["chunks_embedding_384"]
    assert "chunks_tsv" not in defs  # keyword search reads postings
    assert "USING gin" in defs["chunks_metadata"]
    assert version is not None
    assert tuple(int(x) for x in version[0].split(".")[:2]) >= (0, 8)


def test_keyword_index_sources_are_indexed(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename IN ('postings', 'chunks', 'removed_chunks')"
        ).fetchall()
    defs = {name: sql for name, sql in rows}
    assert "(chunk_id, term_id) INCLUDE (tf)" in defs["postings_pkey"]
    assert "(collection_id, version)" in defs["chunks_collection_version"]
    assert "(collection_id, version, chunk_id)" in defs["removed_chunks_pkey"]


def test_upgrade_backfills_postings_of_existing_chunks(postgres: PostgresService) -> None:
    url = postgres.create_database("rt_migrate_backfill")
    assert migrate.upgrade(url, "0001").current == "0001"
    texts = ["Aspirin thins the blood.", "Blood pressure and aspirin; aspirin again."]
    with psycopg.connect(url) as conn:
        cid = conn.execute(
            "INSERT INTO collections (name, embedding_model, embedding_dimensions) "
            "VALUES ('old', 'm', 3) RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        did = conn.execute(
            "INSERT INTO documents (collection_id, content_type, content, content_hash, status) "
            "VALUES (%s, 'text/plain', 'x', 'h', 'ready') RETURNING id",
            (cid,),
        ).fetchone()[0]  # type: ignore[index]
        for i, text in enumerate(texts):
            conn.execute(
                "INSERT INTO chunks (document_id, collection_id, ordinal, text, tsv, length, "
                "embedding, embedding_dim) SELECT %s, %s, %s, %s, v, (SELECT "
                "sum(cardinality(u.positions)) FROM unnest(v) u), '[1,0,0]', 3 "
                "FROM to_tsvector('english', %s) v",
                (did, cid, i, text, text),
            )
        conn.execute(
            "INSERT INTO term_stats (collection_id, lexeme, df) SELECT %s, u.lexeme, count(*) "
            "FROM chunks ch, unnest(ch.tsv) u GROUP BY u.lexeme",
            (cid,),
        )
    assert migrate.upgrade(url).up_to_date
    with psycopg.connect(url) as conn:
        postings = conn.execute(
            "SELECT t.lexeme, ch.ordinal, p.tf FROM postings p "
            "JOIN term_stats t ON t.id = p.term_id JOIN chunks ch ON ch.id = p.chunk_id "
            "ORDER BY 1, 2"
        ).fetchall()
    assert ("aspirin", 1, 2) in postings  # 'again' and 'and' are stopwords
    assert ("blood", 0, 1) in postings
    assert len(postings) == 3 + 3  # one per distinct lexeme of each chunk


def test_upgrade_keeps_resends_of_existing_documents_recognised(
    postgres: PostgresService,
) -> None:
    url = postgres.create_database("rt_migrate_identity")
    assert migrate.upgrade(url, "0002").current == "0002"
    with psycopg.connect(url) as conn:
        cid = conn.execute(
            "INSERT INTO collections (name, embedding_model, embedding_dimensions) "
            "VALUES ('old', 'm', 3) RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        old = conn.execute(
            "INSERT INTO documents (collection_id, title, source, content_type, content, "
            "content_hash, metadata) VALUES (%s, 'T', NULL, 'text/plain', 'same text', "
            "encode(sha256('same text'), 'hex'), %s) RETURNING id",
            (cid, Jsonb({"b": 2, "a": [1, "x"]})),
        ).fetchone()[0]  # type: ignore[index]
    assert migrate.upgrade(url).up_to_date

    async def resend() -> tuple[tuple[object, Accepted], tuple[object, Accepted]]:
        db = Database(url)
        await db.open()
        try:
            store = Store(db)
            collection = await store.get_collection("old")
            fields = {"content": "same text", "title": "T", "source": None}
            same = await store.create_document(
                collection, **fields, content_type="text/plain", metadata={"a": [1, "x"], "b": 2}
            )
            other = await store.create_document(
                collection, **fields, content_type="text/plain", metadata={"a": "another id"}
            )
            return (same[0].id, same[1]), (other[0].duplicate_of, other[1])
        finally:
            await db.close()

    same, other = asyncio.run(resend())
    assert same == (old, Accepted.EXISTING)
    assert other == (old, Accepted.CREATED)
    with pytest.raises(sa.exc.DBAPIError, match="collection old holds documents with identical"):
        migrate.downgrade(url, "0002")
    assert migrate.schema_status(url).up_to_date
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM documents WHERE id <> %s", (old,))
    assert migrate.downgrade(url, "0002").current == "0002"


def test_check_reports_an_unreachable_database() -> None:
    code, _ = run("postgresql://nobody@127.0.0.1:1/none", "--check")
    assert code == 3
