"""Ingestion throughput through the whole path vs bare model encoding of the same chunks.

Pipeline: documents POSTed to the API -> Redis queue (arq) -> `rag-runtime worker` process ->
chunking -> batched MiniLM embeddings -> Postgres (chunks, full text, HNSW, statistics).
Baseline: the bare sentence-transformers model encoding exactly the chunk texts the pipeline
stored, in one `encode` call (it sorts all texts by length), with the runtime's batch size,
normalized embeddings and the worker's torch thread settings, in this process while the worker
is idle.

The machine may be shared, so the two are measured in interleaved rounds: each round ingests a
fresh slice of documents into its own collection (clock: first POST until the database shows
every document `ready`, polled every 20 ms), then bare-encodes that round's chunks. Figures are
per-round rates, their medians and the ratio of the medians, plus the CPU seconds each process
spent during the pipeline phases and `ratio_cpu` (bare encode CPU / pipeline CPU, all
processes), which moves far less than wall time when the machine is shared.
Aim: ratio = pipeline / bare >= 0.85.
Run: make bench-ingest_throughput [ARGS="--docs 600 --rounds 5" | ARGS=--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psutil
import psycopg

from benchmarks._common import emit, median, run
from benchmarks._runtime import DEFAULT_DATASET, api_server, doc_text, load_beir, services
from hack.services import dies_with_parent

POLL_S = 0.02
QUICK_DOCS, QUICK_ROUNDS = 120, 3


class CpuMeter:
    """CPU seconds (user + system) of a process (and its children) between two marks."""

    def __init__(self, pid: int, *, children: bool) -> None:
        self.root = psutil.Process(pid)
        self.children = children
        self._start: dict[int, float] = {}

    def _snapshot(self) -> dict[int, float]:
        out: dict[int, float] = {}
        procs = [self.root, *(self.root.children(recursive=True) if self.children else [])]
        for proc in procs:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            out[proc.pid] = t.user + t.system
        return out

    def mark(self) -> None:
        self._start = self._snapshot()

    def elapsed(self) -> float:
        return sum(v - self._start.get(pid, 0.0) for pid, v in self._snapshot().items())


def wait_ready(conn: psycopg.Connection[Any], collection: str, total: int, timeout: float) -> None:
    """Poll the database (cheap, fine-grained) until `total` documents of `collection` are ready."""
    deadline = time.monotonic() + timeout
    query = (
        "SELECT count(*) FILTER (WHERE d.status = 'ready'), "
        "count(*) FILTER (WHERE d.status = 'failed') "
        "FROM documents d JOIN collections c ON c.id = d.collection_id WHERE c.name = %s"
    )
    while time.monotonic() < deadline:
        row = conn.execute(query, (collection,)).fetchone()
        assert row is not None
        if row[1]:
            raise RuntimeError(f"ingestion failed for {row[1]} document(s) in {collection}")
        if row[0] >= total:
            return
        time.sleep(POLL_S)
    raise TimeoutError(f"documents of {collection} did not become ready in time")


def slices(items: list[Any], parts: int) -> Iterator[list[Any]]:
    size = len(items) // parts
    for i in range(parts):
        yield items[i * size : (i + 1) * size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--docs", type=int, default=600, help="documents over all rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--concurrency", type=int, default=None, help="RAG_WORKER_CONCURRENCY (default: setting)"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_ROUNDS} rounds of {QUICK_DOCS} documents"
    )
    args = parser.parse_args()
    n_docs, n_rounds = (QUICK_DOCS, QUICK_ROUNDS) if args.quick else (args.docs, args.rounds)
    if n_rounds < 1 or n_docs < n_rounds:
        parser.error("need at least one document per round")
    data = load_beir(args.dataset.resolve())
    corpus = list(data.corpus.items())
    warm_docs, docs = corpus[:8], corpus[8 : 8 + n_docs]

    from rag_runtime.embedding import (
        bundled_model_path,
        load_model,
        sleeping_compute_threads,
    )
    from rag_runtime.settings import Settings

    sleeping_compute_threads()  # what the worker does; before this process loads torch

    defaults = Settings()
    concurrency = args.concurrency or defaults.worker_concurrency
    batch_size = defaults.embedding_batch_size
    rounds: list[dict[str, Any]] = []
    cpu = {"worker": 0.0, "postgres": 0.0, "redis": 0.0, "benchmark_and_api": 0.0}
    bare_cpu: list[float] = []
    load_before = os.getloadavg()[0]

    with services("postgres", "redis") as svc:
        db_url, redis_url = svc["postgres"].url, svc["redis"].url
        env = {
            **os.environ,
            "RAG_DATABASE_URL": db_url,
            "RAG_REDIS_URL": redis_url,
            "RAG_WORKER_CONCURRENCY": str(concurrency),
            "RAG_LOG_LEVEL": "warning",
        }
        with tempfile.TemporaryFile() as log:
            # The worker loads its model while the API loads its own.
            worker = subprocess.Popen(
                dies_with_parent([sys.executable, "-m", "rag_runtime.cli", "worker"]),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                with (
                    api_server(database_url=db_url, redis_url=redis_url) as url,
                    httpx.Client(base_url=url, timeout=120) as client,
                    psycopg.connect(db_url, autocommit=True) as conn,
                ):
                    # The API process loaded the same model object the baseline uses.
                    model = load_model(bundled_model_path())
                    meters = {
                        "worker": CpuMeter(worker.pid, children=True),
                        "postgres": CpuMeter(svc["postgres"].process.popen.pid, children=True),
                        "redis": CpuMeter(svc["redis"].process.popen.pid, children=True),
                        "benchmark_and_api": CpuMeter(os.getpid(), children=False),
                    }

                    def ingest(collection: str, batch: list[tuple[str, dict[str, str]]]) -> float:
                        client.post("/api/v1/collections", json={"name": collection})
                        for meter in meters.values():
                            meter.mark()
                        start = time.perf_counter()
                        for doc_id, doc in batch:
                            client.post(
                                f"/api/v1/collections/{collection}/documents",
                                json={"text": doc_text(doc), "title": doc_id},
                            ).raise_for_status()
                        wait_ready(conn, collection, len(batch), timeout=1800)
                        elapsed = time.perf_counter() - start
                        if collection != "warm":
                            for name, meter in meters.items():
                                cpu[name] += meter.elapsed()
                        return elapsed

                    def chunk_texts(collection: str) -> list[str]:
                        return [
                            r[0]
                            for r in conn.execute(
                                "SELECT ch.text FROM chunks ch JOIN collections c "
                                "ON c.id = ch.collection_id WHERE c.name = %s ORDER BY ch.id",
                                (collection,),
                            )
                        ]

                    def bare_encode(texts: list[str]) -> float:
                        meters["benchmark_and_api"].mark()
                        start = time.perf_counter()
                        model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
                        elapsed = time.perf_counter() - start
                        bare_cpu.append(meters["benchmark_and_api"].elapsed())
                        return elapsed

                    # Warm-up, not counted: the worker's model, pool connections and the
                    # concurrent path; the baseline's model on the same chunks.
                    ingest("warm", warm_docs)
                    bare_encode(chunk_texts("warm"))

                    for i, batch in enumerate(slices(docs, n_rounds)):
                        name = f"round-{i}"
                        pipeline_s = ingest(name, batch)
                        texts = chunk_texts(name)
                        bare_s = bare_encode(texts)
                        rounds.append(
                            {
                                "documents": len(batch),
                                "chunks": len(texts),
                                "pipeline_s": round(pipeline_s, 2),
                                "bare_s": round(bare_s, 2),
                                "pipeline_chunks_per_s": round(len(texts) / pipeline_s, 2),
                                "bare_encode_chunks_per_s": round(len(texts) / bare_s, 2),
                                "ratio": round(bare_s / pipeline_s, 3),
                            }
                        )
                        print(rounds[-1], flush=True)
            finally:
                worker.terminate()
                worker.wait(60)

    pipeline_rate = median([r["pipeline_chunks_per_s"] for r in rounds])
    bare_rate = median([r["bare_encode_chunks_per_s"] for r in rounds])
    emit(
        "ingest_throughput",
        params={
            "documents": sum(r["documents"] for r in rounds),
            "rounds": len(rounds),
            "chunks": sum(r["chunks"] for r in rounds),
            "quick": args.quick,
            "worker_concurrency": concurrency,
            "batch_size": batch_size,
            "cpus": os.cpu_count(),
            "loadavg_1m_before": round(load_before, 2),
        },
        pipeline_chunks_per_s=round(pipeline_rate, 2),
        bare_encode_chunks_per_s=round(bare_rate, 2),
        ratio=round(pipeline_rate / bare_rate, 3),
        ratio_per_round_median=median([r["ratio"] for r in rounds]),
        rounds=rounds,
        pipeline_cpu_s={k: round(v, 1) for k, v in cpu.items()},
        bare_encode_s=round(sum(r["bare_s"] for r in rounds), 1),
        bare_encode_cpu_s=round(sum(bare_cpu[1:]), 1),
        # Work, not time: steadier than `ratio` when other programs share the CPU.
        ratio_cpu=round(sum(bare_cpu[1:]) / max(sum(cpu.values()), 1e-9), 3),
    )


if __name__ == "__main__":
    run(main)
