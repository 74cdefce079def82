"""Ingestion throughput through the whole path vs bare model encoding of the same chunks.

Pipeline: documents POSTed to the API -> Redis queue (arq) -> `rag-runtime worker` process ->
chunking -> batched MiniLM embeddings -> Postgres (chunks, full text, HNSW, statistics). The
clock runs from the first POST until every document is `ready`. Baseline, same run: the same
chunk texts (read back from Postgres) encoded by the bare sentence-transformers model in one
`encode` call (batch size 64), with the worker stopped.
Aim: ratio = pipeline / bare >= 0.85.
Run: make bench-ingest_throughput [ARGS=--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from benchmarks._common import emit
from benchmarks._runtime import (
    DEFAULT_DATASET,
    api_server,
    doc_text,
    load_beir,
    services,
    wait_all_ready,
)

CONCURRENCY = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--quick", action="store_true", help="60 documents")
    args = parser.parse_args()
    n_docs = 60 if args.quick else args.docs
    data = load_beir(args.dataset.resolve())
    docs = list(data.corpus.items())[: n_docs + 1]

    with services("postgres", "redis") as svc:
        db_url, redis_url = svc["postgres"].url, svc["redis"].url
        env = {
            **os.environ,
            "RAG_DATABASE_URL": db_url,
            "RAG_REDIS_URL": redis_url,
            "RAG_WORKER_CONCURRENCY": str(CONCURRENCY),
            "RAG_LOG_LEVEL": "warning",
        }
        with tempfile.TemporaryFile() as log:
            # The worker loads its model while the API loads its own.
            worker = subprocess.Popen(
                [sys.executable, "-m", "rag_runtime.cli", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            with (
                api_server(database_url=db_url, redis_url=redis_url) as url,
                httpx.Client(base_url=url, timeout=120) as client,
            ):
                try:
                    client.post("/api/v1/collections", json={"name": "warm"}).raise_for_status()
                    client.post("/api/v1/collections", json={"name": "bench"}).raise_for_status()
                    # Warm-up: the worker has loaded its model once this document is ready.
                    warm_id, warm = docs[0]
                    client.post(
                        "/api/v1/collections/warm/documents",
                        json={"text": doc_text(warm), "title": warm_id},
                    ).raise_for_status()
                    wait_all_ready(client, "warm", 1, timeout=600)
                    start = time.perf_counter()
                    for doc_id, doc in docs[1:]:
                        client.post(
                            "/api/v1/collections/bench/documents",
                            json={"text": doc_text(doc), "title": doc_id},
                        ).raise_for_status()
                    wait_all_ready(client, "bench", len(docs) - 1)
                    pipeline_s = time.perf_counter() - start
                finally:
                    worker.terminate()
                    worker.wait(60)
        with psycopg.connect(db_url) as conn:
            texts = [
                r[0]
                for r in conn.execute(
                    "SELECT ch.text FROM chunks ch JOIN collections c ON c.id = ch.collection_id "
                    "WHERE c.name = 'bench' ORDER BY ch.id"
                )
            ]

    from rag_runtime.embedding import bundled_model_path, load_sentence_transformer

    model = load_sentence_transformer(bundled_model_path())
    model.encode(texts[:8], batch_size=64)  # warm-up
    start = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    bare_s = time.perf_counter() - start

    pipeline_rate = len(texts) / pipeline_s
    bare_rate = len(texts) / bare_s
    emit(
        "ingest_throughput",
        params={
            "documents": len(docs) - 1,
            "chunks": len(texts),
            "quick": args.quick,
            "worker_concurrency": CONCURRENCY,
            "batch_size": 64,
            "cpus": os.cpu_count(),
        },
        pipeline_chunks_per_s=round(pipeline_rate, 2),
        bare_encode_chunks_per_s=round(bare_rate, 2),
        ratio=round(pipeline_rate / bare_rate, 3),
        pipeline_s=round(pipeline_s, 1),
        bare_s=round(bare_s, 1),
    )


if __name__ == "__main__":
    main()
