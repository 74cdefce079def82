"""`rag-runtime migrate`: versioned alembic migrations under an advisory lock.

Covers: `--check` exits non-zero on an empty database, `migrate` brings it to head, running
again (or several at once) changes nothing, and the schema has the HNSW and GIN indexes.
"""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
from typer.testing import CliRunner

from hack.services import PostgresService
from rag_runtime import migrate
from rag_runtime.cli import app

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
    assert all("current='0001'" in out for out in outputs)
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
    assert "USING gin" in defs["chunks_tsv"]
    assert "USING gin" in defs["chunks_metadata"]
    assert version is not None
    assert tuple(int(x) for x in version[0].split(".")[:2]) >= (0, 8)


def test_check_reports_an_unreachable_database() -> None:
    code, _ = run("postgresql://nobody@127.0.0.1:1/none", "--check")
    assert code == 3
