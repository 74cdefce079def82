"""The operator's Postgres first-start script against a real Postgres (with pgvector).

Aspects covered: run as the superuser, the way the Postgres image runs
`/docker-entrypoint-initdb.d/*.sh`, the script creates the runtime's role without any
superuser, database, role or replication right, owning database `rag` in which pgvector
exists; the runtime's own migrations then succeed as that role; the role cannot create a
database or a role, nor read another database's tables. The server is this test's own (roles
are server-wide, so the shared session Postgres is not touched).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.paths import cache_dir
from hack.services.postgres import SUPERUSER, PostgresService, bin_dir, start_postgres
from rag_operator.builders.storeconfig import postgres_init_script

pytestmark = [pytest.mark.integration]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def fresh_postgres() -> Iterator[PostgresService]:
    workdir = Path(tempfile.mkdtemp(prefix="ragops-pg-init-"))
    service = start_postgres(workdir, cache_dir())
    try:
        yield service
    finally:
        service.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _psql(pg: PostgresService, sql: str, *, user: str, db: str, check: bool = True) -> str:
    url = f"postgresql://{user}@127.0.0.1:{pg.port}/{db}"
    proc = subprocess.run(
        [str(bin_dir() / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        capture_output=True,
        text=True,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip() if proc.returncode == 0 else f"ERROR {proc.stderr.strip()}"


def test_runtime_role_owns_only_its_database(fresh_postgres: PostgresService) -> None:
    pg = fresh_postgres
    script = Path(tempfile.mkdtemp(prefix="ragops-init-")) / "10-ragops-role.sh"
    script.write_text(postgres_init_script())
    env = {
        **os.environ,
        "PATH": f"{bin_dir()}:{os.environ['PATH']}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg.port),
        "POSTGRES_USER": SUPERUSER,
        "RAG_DB_PASSWORD": "a-generated-password",
    }
    run = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr

    flags = _psql(
        pg,
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, "
        "rolcanlogin, rolpassword IS NOT NULL FROM pg_authid WHERE rolname = 'rag'",
        user=SUPERUSER,
        db="postgres",
    )
    assert flags == "f|f|f|f|f|t|t"
    owner = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'rag'"
    assert _psql(pg, owner, user=SUPERUSER, db="postgres") == "rag"
    ext = "SELECT extname FROM pg_extension WHERE extname = 'vector'"
    assert _psql(pg, ext, user="rag", db="rag") == "vector"

    # The runtime's migrations run as the role.
    migrate = subprocess.run(
        [sys.executable, "-m", "rag_runtime.cli", "migrate"],
        env={
            **os.environ,
            "RAG_DATABASE_URL": f"postgresql://rag:a-generated-password@127.0.0.1:{pg.port}/rag",
        },
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert (
        _psql(
            pg, "SELECT count(*) > 0 FROM pg_tables WHERE tableowner = 'rag'", user="rag", db="rag"
        )
        == "t"
    )

    # And nothing beyond its database.
    assert _psql(pg, "CREATE DATABASE other", user="rag", db="rag", check=False).startswith("ERROR")
    assert _psql(pg, "CREATE ROLE evil", user="rag", db="rag", check=False).startswith("ERROR")
    _psql(pg, "CREATE TABLE private (x int)", user=SUPERUSER, db="postgres")
    denied = _psql(pg, "SELECT * FROM private", user="rag", db="postgres", check=False)
    assert denied.startswith("ERROR")
    assert "permission denied" in denied
