"""`rag-runtime backup create|list|verify|prune` and `rag-runtime restore`, as functions.

Each returns the JSON-able result the CLI prints, or raises BackupError with a message that
names what is wrong. Layout of a backup named N at a destination:

    N/postgres.dump    pg_dump custom format of one consistent snapshot
    N/manifest.json    written last; a folder without it is not a backup
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from pydantic import ValidationError

from rag_runtime import migrate
from rag_runtime.backup import postgres
from rag_runtime.backup.manifest import (
    FileEntry,
    Manifest,
    check_name,
    default_name,
    restore_refusal,
)
from rag_runtime.backup.retention import to_remove
from rag_runtime.backup.storage import MANIFEST, Destination, FileDestination, Written
from rag_runtime.metrics import package_version
from rag_runtime.settings import Settings

log = logging.getLogger(__name__)


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message names why."""


class Steps:
    """Seconds each step of an operation took, in order (reported with its result)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def done(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = round(now - self._last, 3)
        self._last = now


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def load_manifest(dest: Destination, name: str) -> Manifest | None:
    raw = dest.read(f"{name}/{MANIFEST}")
    if raw is None:
        return None
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        raise BackupError(f"{dest.url}: {name}/{MANIFEST} is not a manifest: {exc}") from exc


def create(dest: Destination, database_url: str, name: str | None = None) -> dict[str, Any]:
    """Dump one consistent snapshot to `dest`, then write the manifest (last)."""
    started = _now()
    clock = time.perf_counter()
    name = check_name(name) if name else default_name(started)
    if load_manifest(dest, name) is not None:
        raise BackupError(f"{dest.url}: a backup named {name} already exists")
    with postgres.snapshot(database_url) as (snapshot_id, facts):
        if facts.schema_revision is None:
            raise BackupError("the database has no ragops schema (run `rag-runtime migrate`)")
        written: Written = dest.write_stream(
            f"{name}/{postgres.DUMP_FILE}", postgres.dump(database_url, snapshot_id)
        )
    manifest = Manifest(
        name=name,
        started_at=started,
        completed_at=_now(),
        runtime_version=package_version(),
        schema_revision=facts.schema_revision,
        schema_revisions=facts.schema_revisions,
        postgres_version=facts.server_version,
        collections=facts.collections,
        counts=facts.counts,
        files=[FileEntry(name=postgres.DUMP_FILE, size=written.size, sha256=written.sha256)],
        size=written.size,
    )
    dest.write(f"{name}/{MANIFEST}", manifest.model_dump_json(indent=2).encode())
    return {
        "ok": True,
        "action": "create",
        "location": dest.url,
        **manifest.summary(),
        "seconds": round(time.perf_counter() - clock, 3),
    }


def complete_backups(dest: Destination) -> list[Manifest]:
    """Backups with a manifest, oldest first (folders without one are not backups)."""
    found = [m for n in dest.names() if (m := load_manifest(dest, n)) is not None]
    return sorted(found, key=lambda m: (m.completed_at, m.name))


def list_backups(dest: Destination) -> dict[str, Any]:
    return {
        "ok": True,
        "action": "list",
        "location": dest.url,
        "backups": [m.summary() for m in complete_backups(dest)],
    }


def _require(dest: Destination, name: str) -> Manifest:
    manifest = load_manifest(dest, check_name(name))
    if manifest is None:
        raise BackupError(f"{dest.url}: no complete backup named {name}")
    return manifest


def _checksum(dest: Destination, name: str, entry: FileEntry) -> dict[str, Any]:
    digest, size = hashlib.sha256(), 0
    with dest.stream(f"{name}/{entry.name}") as chunks:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
    ok = size == entry.size and digest.hexdigest() == entry.sha256
    return {"file": entry.name, "ok": ok, "size": size, "sha256": digest.hexdigest()}


def verify(dest: Destination, name: str) -> dict[str, Any]:
    """Re-read every file of a backup and compare sizes and sha256 with the manifest."""
    manifest = _require(dest, name)
    files = [_checksum(dest, name, f) for f in manifest.files]
    return {"ok": all(f["ok"] for f in files), "action": "verify", "name": name,
            "location": dest.url, "files": files}  # fmt: skip


def prune(
    dest: Destination, *, keep_last: int | None, max_age_days: float | None
) -> dict[str, Any]:
    backups = complete_backups(dest)
    try:
        doomed = to_remove(backups, now=_now(), keep_last=keep_last, max_age_days=max_age_days)
    except ValueError as exc:
        raise BackupError(str(exc)) from None
    for name in doomed:
        dest.remove(name)
    kept = [m.name for m in backups if m.name not in doomed]
    return {"ok": True, "action": "prune", "location": dest.url, "removed": doomed, "kept": kept}


def _fetch_dump(dest: Destination, name: str, entry: FileEntry, workdir: Path) -> Path:
    """A local copy of the dump whose size and sha256 match the manifest's."""
    if isinstance(dest, FileDestination):
        local = dest.local_path(f"{name}/{entry.name}")
        check = _checksum(dest, name, entry)
    else:
        local = workdir / entry.name
        digest, size = hashlib.sha256(), 0
        with dest.stream(f"{name}/{entry.name}") as chunks, local.open("wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        check = {"ok": size == entry.size and digest.hexdigest() == entry.sha256, "size": size}
    if not check["ok"]:
        raise BackupError(
            f"backup {name}: {entry.name} does not match its manifest (size {check['size']}, "
            f"expected {entry.size}); run `rag-runtime backup verify`"
        )
    return local


def restore(
    dest: Destination,
    name: str,
    settings: Settings,
    database_url: str,
    *,
    replace: bool = False,
    jobs: int = postgres.RESTORE_JOBS,
) -> dict[str, Any]:
    """Restore backup `name` into the database, then make the system whole again.

    Refuses a backup this runtime cannot serve (schema revision, embedding model) and a
    target that holds data unless `replace`. After pg_restore: the schema is migrated up when
    the backup is behind; counts are compared with the manifest; documents that were not ready
    are queued again; the database keeps its own graph scope (a new one when it had none,
    never the backup's) and the graph is rebuilt there when a graph is configured.
    """
    clock = time.perf_counter()
    steps = Steps()
    manifest = _require(dest, name)
    target = _check_restorable(manifest, settings, database_url, replace=replace)
    steps.done("check")
    _load_dump(dest, name, manifest, database_url, target, jobs, steps)
    backup_scope = postgres.graph_scope(database_url)  # its source's
    status = migrate.schema_status(database_url)
    if status.state is migrate.SchemaState.BEHIND:
        status = migrate.upgrade(database_url)
    steps.done("migrate")
    documents, chunks = _check_counts(name, manifest, database_url)
    steps.done("counts")
    scope = postgres.set_graph_scope(database_url, target.graph_scope)
    pending = asyncio.run(_requeue(settings, database_url))
    steps.done("requeue")
    graph = None
    if settings.neo4j_uri:
        graph = asyncio.run(_rebuild_graph(settings, database_url, scope))
        steps.done("graph")
    return {
        "ok": True,
        "action": "restore",
        "name": name,
        "location": dest.url,
        "schema_revision": status.current,
        "documents": documents,
        "chunks": chunks,
        "requeued": pending,
        "graph_documents": graph,
        "graph_scope": scope,
        "backup_graph_scope": backup_scope,
        "seconds": round(time.perf_counter() - clock, 3),
        "steps_s": steps.seconds,
    }


def _load_dump(
    dest: Destination,
    name: str,
    manifest: Manifest,
    database_url: str,
    target: postgres.Target,
    jobs: int,
    steps: Steps,
) -> None:
    """Fetch the backup's dump (checked against the manifest) and pg_restore it, after
    clearing a target that had tables."""
    with tempfile.TemporaryDirectory(prefix="rag-restore-") as tmp:
        entry = next((f for f in manifest.files if f.name == postgres.DUMP_FILE), None)
        if entry is None:
            raise BackupError(f"backup {name}: the manifest lists no {postgres.DUMP_FILE}")
        local = _fetch_dump(dest, name, entry, Path(tmp))
        steps.done("fetch")
        if target.tables:
            postgres.clear(database_url)
        postgres.restore(database_url, local, jobs=jobs)
        steps.done("pg_restore")


def _check_restorable(
    manifest: Manifest, settings: Settings, database_url: str, *, replace: bool
) -> postgres.Target:
    """The target database, once the backup is one this runtime serves and may write there."""
    ours = migrate.declared_revisions()
    refusal = restore_refusal(
        manifest,
        head=migrate.head_revision(),
        known=list(ours),
        embedding_model=settings.embedding_model,
        embedding_dimensions=settings.embedding_dimensions,
    )
    if refusal:
        raise BackupError(refusal)
    target = postgres.inspect_target(database_url)
    if target.holds_data and not replace:
        raise BackupError(
            f"the target database holds {target.collections} collections and "
            f"{target.documents} documents; restore refuses a non-empty target "
            "(pass --replace to drop what it holds)"
        )
    return target


def _check_counts(name: str, manifest: Manifest, database_url: str) -> tuple[int, int]:
    """The restored documents and chunks; an error unless they are the manifest's."""
    got, want = postgres.documents_and_chunks(database_url), manifest.counts
    if got != (want.documents, want.chunks):
        raise BackupError(
            f"restored {got[0]} documents and {got[1]} chunks; the manifest of "
            f"{name} records {want.documents} and {want.chunks}"
        )
    return got


async def _requeue(settings: Settings, database_url: str) -> int:
    """Documents the backup caught before they were ready go back on the queue.

    A document caught 'processing' is queued again (its worker is gone). With Redis, each is
    enqueued for the workers; without, the API's in-process queue finds queued documents
    when it starts.
    """
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE documents SET status = 'queued', updated_at = now() WHERE status = 'processing'"
        )
        cur = await conn.execute("SELECT id FROM documents WHERE status = 'queued' ORDER BY id")
        ids = [uuid.UUID(str(r[0])) for r in await cur.fetchall()]
    if ids and settings.redis_url:
        from rag_runtime.ingest import RedisQueue

        queue = await RedisQueue.connect(settings.redis_url, settings.queue_name)
        try:
            for document_id in ids:
                await queue.enqueue(document_id)
        finally:
            await queue.close()
    return len(ids)


async def _rebuild_graph(settings: Settings, database_url: str, scope: str) -> int:
    """Rebuild the graph from the restored chunks: what ingestion writes, document by document,
    in the restored database's `scope` (whatever that scope held before goes first)."""
    from rag_runtime.graph import GraphChunk, GraphStore

    async def own_scope() -> str:
        return scope

    password = settings.neo4j_password.get_secret_value() if settings.neo4j_password else ""
    assert settings.neo4j_uri is not None
    graph = GraphStore(
        settings.neo4j_uri, settings.neo4j_user, password, own_scope, settings.neo4j_retry_seconds
    )
    done = 0
    try:
        await graph.clear()
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            cur = await conn.execute(
                "SELECT id, collection_id FROM documents WHERE status = 'ready' "
                "ORDER BY created_at, id"
            )
            for document_id, collection_id in await cur.fetchall():
                rows = await conn.execute(
                    "SELECT id, ordinal, text FROM chunks WHERE document_id = %s ORDER BY ordinal",
                    (document_id,),
                )
                chunks = [GraphChunk(r[0], r[1], r[2]) for r in await rows.fetchall()]
                await graph.index_document(collection_id, uuid.UUID(str(document_id)), chunks)
                done += 1
    finally:
        await graph.close()
    return done
