"""`rag-runtime backup create|list|verify|prune` and `rag-runtime restore`, run as the CLI
against a real Postgres, a real S3-compatible server (S3Proxy) and a real Redis.

Covers: a backup to S3 restored into an empty database has the manifest's document and chunk
counts and answers the same queries with the same top-10 (vector, keyword, hybrid); documents
not yet ready when the backup ran are queued again in Redis after restore; the manifest records
time, versions, schema revision, embedding model and dimension, counts, sizes and checksums;
a restored database has a graph scope of its own, never the backup's (a restore with --replace
keeps the target's); restore refuses a target that holds data unless --replace, a backup
whose schema revision is
ahead by an incompatible migration, one built with another embedding model, a missing name and
a corrupted file (which `verify` reports); prune keeps the newest by count; bad input names
the option; a backup process killed midway leaves nothing listed as complete, and the same name
then completes; a restore as the database's own (not super) user leaves the extension to
the superuser who installed it, and says what to ask for when none did.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from hack.services import PostgresService, RedisService, S3Service
from rag_runtime import migrate
from tests.integration.runtime.helpers import add_documents, api

pytestmark = pytest.mark.integration

TOPICS = [
    "Postgres keeps chunks and their pgvector embeddings in one table.",
    "Redis holds the ingestion queue and a cache of recent search results.",
    "Neo4j stores entities such as Kubernetes, Postgres and Redis as a graph.",
    "A migration Job runs the schema upgrade before the new pods start.",
    "The operator creates a CronJob that takes a backup every night.",
    "S3-compatible object storage keeps backups far away from the cluster.",
    "Hybrid retrieval fuses keyword BM25 scores with vector similarity.",
    "A canary release sends a small share of traffic to the new version.",
    "Prometheus scrapes the runtime's metrics for dashboards and alerts.",
    "Traefik routes requests from the Gateway to the API pods.",
    "Chunking splits documents into overlapping windows of tokens.",
    "The embedding model all-MiniLM-L6-v2 has 384 dimensions.",
]
QUERIES = ["where are embeddings stored", "backup schedule", "graph of entities",
           "traffic routing", "keyword scores"]  # fmt: skip
COLLECTION = "notes"
HEAD = migrate.head_revision()


def cli(*args: str, env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    """Run `rag-runtime ARGS` as a process; its exit code, last JSON line and stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "rag_runtime.cli", *args],
        env={**os.environ, "RAG_LOG_LEVEL": "warning", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    assert lines, f"no output; stderr: {result.stderr}"
    return result.returncode, json.loads(lines[-1]), result.stderr


def graph_scope(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT id::text FROM graph_scope").fetchone()
    assert row is not None
    return str(row[0])


def top10(client: TestClient) -> dict[str, list[list[Any]]]:
    found = {}
    for strategy in ("vector", "keyword", "hybrid"):
        for q in QUERIES:
            body = {"collection": COLLECTION, "query": q, "strategy": strategy, "top_k": 10}
            resp = client.post("/api/v1/search", json=body)
            assert resp.status_code == 200, resp.text
            found[f"{strategy}:{q}"] = [
                [h["chunk_id"], h["document_id"], round(h["score"], 5)]
                for h in resp.json()["results"]
            ]
    return found


@pytest.fixture(scope="module")
def source(postgres: PostgresService) -> tuple[str, dict[str, list[list[Any]]]]:
    """A system's database with documents ready and one uploaded but not yet processed (as a
    backup catches it while the queue holds its job); its top-10s."""
    url = postgres.create_database("rt_backup_source")
    with api(database_url=url) as client:
        add_documents(client, COLLECTION, [{"text": t, "title": f"t{i}"}
                                           for i, t in enumerate(TOPICS)])  # fmt: skip
        results = top10(client)
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO documents (collection_id, content_type, content, content_hash, "
            "identity_hash, status) SELECT id, 'text/plain', 'Pending work survives a restore.', "
            "'pending', 'pending', 'processing' FROM collections WHERE name = %s",
            (COLLECTION,),
        )
    return url, results


@pytest.fixture(scope="module")
def bucket(s3: S3Service) -> str:
    s3.create_bucket("backups")
    return "s3://backups/tests/backup-module"


def test_backup_to_s3_restores_counts_top10_and_pending_work(
    source: tuple[str, dict[str, list[list[Any]]]],
    postgres: PostgresService,
    s3: S3Service,
    redis: RedisService,
    bucket: str,
) -> None:
    url, before = source
    env = {**s3.env(), "RAG_DATABASE_URL": url}
    code, made, err = cli("backup", "create", "--to", bucket, "--name", "nightly-1", env=env)
    assert code == 0, err
    assert made["ok"] is True
    assert made["name"] == "nightly-1"
    assert made["documents"] == len(TOPICS) + 1
    code, listed, _ = cli("backup", "list", "--to", bucket, env=env)
    assert code == 0
    assert [b["name"] for b in listed["backups"]] == ["nightly-1"]
    code, verified, _ = cli("backup", "verify", "--to", bucket, "--name", "nightly-1", env=env)
    assert code == 0
    assert verified["ok"] is True

    target = postgres.create_database("rt_backup_target")
    renv = {**s3.env(), "RAG_DATABASE_URL": target, "RAG_REDIS_URL": redis.url,
            "RAG_QUEUE_NAME": "restore-test"}  # fmt: skip
    code, restored, err = cli("restore", "--from", bucket, "--name", "nightly-1", env=renv)
    assert code == 0, err
    assert (restored["documents"], restored["chunks"]) == (made["documents"], made["chunks"])
    assert restored["requeued"] == 1
    assert restored["schema_revision"] == migrate.head_revision()
    steps = restored["steps_s"]  # where the restore's time went, step by step
    assert list(steps) == ["check", "fetch", "pg_restore", "migrate", "counts", "requeue"]
    assert all(v >= 0 for v in steps.values())
    assert sum(steps.values()) <= restored["seconds"] + 0.01  # each rounded to 1 ms
    assert restored["graph_scope"] == graph_scope(target) != graph_scope(url)
    with psycopg.connect(target) as conn:
        row = conn.execute("SELECT count(*) FILTER (WHERE status = 'queued') FROM documents")
        assert row.fetchone() == (1,)
    import redis as redis_client

    assert redis_client.Redis.from_url(redis.url).zcard("restore-test") == 1
    # The queue is Redis (no worker runs): the pending document stays queued while we compare.
    with api(database_url=target, redis_url=redis.url, queue_name="restore-test") as client:
        assert top10(client) == before


def test_manifest_records_what_a_restore_needs(
    source: tuple[str, dict[str, list[list[Any]]]], tmp_path: Path
) -> None:
    url, _ = source
    code, made, err = cli("backup", "create", "--to", f"file://{tmp_path}", "--name", "m",
                          env={"RAG_DATABASE_URL": url})  # fmt: skip
    assert code == 0, err
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["schema_revision"] == migrate.head_revision()
    assert [r["revision"] for r in manifest["schema_revisions"]] == [
        "0001", "0002", "0003", "0004"
    ]  # fmt: skip
    assert manifest["collections"] == [
        {"name": COLLECTION, "embedding_model": "all-MiniLM-L6-v2",
         "embedding_dimensions": 384, "documents": len(TOPICS) + 1, "chunks": made["chunks"]}
    ]  # fmt: skip
    assert manifest["counts"]["pending_documents"] == 1
    assert manifest["counts"]["postings"] > 0
    dump = tmp_path / "m" / "postgres.dump"
    assert manifest["files"][0]["size"] == dump.stat().st_size == manifest["size"]
    import hashlib

    assert manifest["files"][0]["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert manifest["runtime_version"]
    assert manifest["started_at"] <= manifest["completed_at"]


@pytest.fixture(scope="module")
def file_backup(
    source: tuple[str, dict[str, list[list[Any]]]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    url, _ = source
    where = f"file://{tmp_path_factory.mktemp('backups')}"
    code, _, err = cli("backup", "create", "--to", where, "--name", "b1",
                       env={"RAG_DATABASE_URL": url})  # fmt: skip
    assert code == 0, err
    return where, url


def test_restore_refuses_a_target_holding_data_unless_replace(
    file_backup: tuple[str, str], postgres: PostgresService
) -> None:
    where, _ = file_backup
    target = postgres.create_database("rt_backup_busy")
    with api(database_url=target) as client:
        add_documents(client, "other", [{"text": "something else entirely"}])
    env = {"RAG_DATABASE_URL": target}
    own = graph_scope(target)
    code, out, err = cli("restore", "--from", where, "--name", "b1", env=env)
    assert code == 1
    assert out["ok"] is False
    assert "refuses a non-empty target (pass --replace" in err
    code, out, err = cli("restore", "--from", where, "--name", "b1", "--replace", env=env)
    assert code == 0, err
    assert out["graph_scope"] == graph_scope(target) == own  # its graph stays its own
    with psycopg.connect(target) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM collections")]
    assert names == [COLLECTION]


def _owned_database(postgres: PostgresService, name: str, role: str, vector: bool) -> str:
    """A database owned by an ordinary role, as the operator's Postgres has it (the
    superuser installed pgvector in it, or did not); the URL of that role."""
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
            conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
    if vector:
        with psycopg.connect(postgres.url_for(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
    return postgres.url_for(name).replace("postgres@", f"{role}@", 1)


def test_restore_as_the_databases_own_user_not_a_superuser(
    file_backup: tuple[str, str], postgres: PostgresService
) -> None:
    """The extension belongs to the superuser: restoring it (or its comment) as the owner
    of the database would fail with "must be owner of extension vector"."""
    where, source_url = file_backup
    target = _owned_database(postgres, "rt_backup_owned", "ragapp", vector=True)
    code, out, err = cli("restore", "--from", where, "--name", "b1",
                         env={"RAG_DATABASE_URL": target})  # fmt: skip
    assert code == 0, err
    with psycopg.connect(source_url) as conn:
        want = conn.execute("SELECT count(*) FROM chunks").fetchone()
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM chunks").fetchone() == want
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'chunks'")
        assert owner.fetchone() == ("ragapp",)
    assert out["chunks"] == want[0]  # type: ignore[index]

    bare = _owned_database(postgres, "rt_backup_no_vector", "ragapp", vector=False)
    code, out, err = cli("restore", "--from", where, "--name", "b1",
                         env={"RAG_DATABASE_URL": bare})  # fmt: skip
    assert code == 1
    assert out["ok"] is False
    assert "needs extension vector" in err
    assert "CREATE EXTENSION vector" in err


def _edit_manifest(where: str, name: str, change: dict[str, Any]) -> None:
    path = Path(where.removeprefix("file://")) / name / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(change)
    path.write_text(json.dumps(manifest))


def test_restore_refuses_what_this_runtime_cannot_serve(
    file_backup: tuple[str, str], postgres: PostgresService, tmp_path: Path
) -> None:
    where, _ = file_backup
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", where.removeprefix("file://"), str(copy)], check=True)
    target = postgres.create_database("rt_backup_refused")
    env = {"RAG_DATABASE_URL": target}
    manifest = json.loads((copy / "b1" / "manifest.json").read_text())
    ahead = [
        *manifest["schema_revisions"],
        {"revision": "0099", "down_revision": HEAD, "compatible_with_previous": False},
    ]
    _edit_manifest(f"file://{copy}", "b1", {"schema_revision": "0099", "schema_revisions": ahead})
    code, _, err = cli("restore", "--from", f"file://{copy}", "--name", "b1", env=env)
    assert code == 1
    assert f"0099 cannot be run on by a runtime at {HEAD}" in err
    collections = [{**manifest["collections"][0], "embedding_model": "other-model",
                    "embedding_dimensions": 768}]  # fmt: skip
    _edit_manifest(f"file://{copy}", "b1", {"schema_revision": HEAD,
                                             "collections": collections})  # fmt: skip
    code, _, err = cli("restore", "--from", f"file://{copy}", "--name", "b1", env=env)
    assert code == 1
    assert f"collection '{COLLECTION}' was built with other-model (768 dimensions)" in err
    code, _, err = cli("restore", "--from", f"file://{copy}", "--name", "nope", env=env)
    assert code == 1
    assert "no complete backup named nope" in err
    with psycopg.connect(target) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)  # nothing was touched


def test_verify_reports_a_corrupted_file_and_restore_refuses_it(
    file_backup: tuple[str, str], postgres: PostgresService, tmp_path: Path
) -> None:
    where, _ = file_backup
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", where.removeprefix("file://"), str(copy)], check=True)
    dump = copy / "b1" / "postgres.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    env = {"RAG_DATABASE_URL": postgres.create_database("rt_backup_corrupt")}
    code, out, _ = cli("backup", "verify", "--to", f"file://{copy}", "--name", "b1", env=env)
    assert code == 1
    assert out["ok"] is False
    assert out["files"][0]["ok"] is False
    code, _, err = cli("restore", "--from", f"file://{copy}", "--name", "b1", env=env)
    assert code == 1
    assert "postgres.dump does not match its manifest" in err


def test_prune_keeps_the_newest_by_count(
    source: tuple[str, dict[str, list[list[Any]]]], tmp_path: Path
) -> None:
    url, _ = source
    where = f"file://{tmp_path}"
    env = {"RAG_DATABASE_URL": url}
    for name in ("p1", "p2", "p3"):
        assert cli("backup", "create", "--to", where, "--name", name, env=env)[0] == 0
    code, out, _ = cli("backup", "prune", "--to", where, "--keep-last", "1", env=env)
    assert code == 0
    assert out["removed"] == ["p1", "p2"]
    assert out["kept"] == ["p3"]
    assert [b["name"] for b in cli("backup", "list", "--to", where, env=env)[1]["backups"]] == [
        "p3"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p3"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("backup", "create", "--to", "ftp://x/y"), "use s3://bucket/prefix or file:///path"),
        (("backup", "create", "--to", "file:///tmp/x", "--name", "Bad_Name"), "--name 'Bad_Name'"),
        (("backup", "prune", "--to", "file:///tmp/x"), "give --keep-last or --max-age-days"),
        (("backup", "prune", "--to", "file:///tmp/x", "--keep-last", "0"), "--keep-last 0"),
        (("backup", "list", "--to", "s3://b/p"), "credentials missing: set AWS_ACCESS_KEY_ID"),
    ],
)
def test_bad_input_names_the_option(
    args: tuple[str, ...], message: str, source: tuple[str, dict[str, list[list[Any]]]]
) -> None:
    env = {"RAG_DATABASE_URL": source[0], "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    code, out, err = cli(*args, env=env)
    assert code != 0
    assert out["ok"] is False
    assert message in err


def _fill(url: str, chunks: int) -> None:
    """Bulk chunks straight into Postgres so that a dump takes a while (no index to keep)."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO collections (name, embedding_model, embedding_dimensions) "
            "VALUES ('bulk', 'all-MiniLM-L6-v2', 384)"
        )
        conn.execute(
            "INSERT INTO documents (collection_id, content_type, content, content_hash, "
            "identity_hash, status) SELECT id, 'text/plain', 'bulk', 'h', 'i', 'ready' "
            "FROM collections WHERE name = 'bulk'"
        )
        conn.execute(
            "INSERT INTO chunks (document_id, collection_id, ordinal, text, tsv, length, "
            "embedding, embedding_dim) "
            "SELECT d.id, d.collection_id, g, "
            "(SELECT string_agg(md5(random()::text || i || g), '') FROM generate_series(1, 64) i), "
            "''::tsvector, 1, '[1,2,3,4]'::vector, 4 "
            "FROM documents d, generate_series(1, %s) g WHERE d.content = 'bulk'",
            (chunks,),
        )


def _active_copy(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' "
            "AND query LIKE 'COPY public.chunks%%'"
        ).fetchone()
    return bool(row and row[0])


def test_a_backup_killed_midway_is_never_listed_as_complete(
    postgres: PostgresService, s3: S3Service, bucket: str
) -> None:
    url = postgres.create_database("rt_backup_killed")
    migrate.upgrade(url)
    _fill(url, 40_000)
    env = {**os.environ, **s3.env(), "RAG_DATABASE_URL": url, "RAG_LOG_LEVEL": "warning"}
    argv = [sys.executable, "-m", "rag_runtime.cli", "backup", "create", "--to", bucket,
            "--name", "killed"]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _active_copy(url):
            assert proc.poll() is None, f"backup ended before it was caught: {proc.stderr}"
            assert time.monotonic() < deadline, "the dump never started copying chunks"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGSTOP)  # frozen midway: the dump is copying chunks
        assert proc.poll() is None
        listed = cli("backup", "list", "--to", bucket, env=env)[1]
        assert "killed" not in [b["name"] for b in listed["backups"]]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    listed = cli("backup", "list", "--to", bucket, env=env)[1]
    assert "killed" not in [b["name"] for b in listed["backups"]]
    code, _, err = cli("backup", "verify", "--to", bucket, "--name", "killed", env=env)
    assert code == 1
    assert "no complete backup named killed" in err
    code, made, err = cli("backup", "create", "--to", bucket, "--name", "killed", env=env)
    assert code == 0, err
    assert made["chunks"] == 40_000
    assert cli("backup", "verify", "--to", bucket, "--name", "killed", env=env)[0] == 0
