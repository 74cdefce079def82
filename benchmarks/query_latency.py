"""Search latency (p50/p95 per strategy) at 10k and 100k chunks, and HNSW recall@10.

Chunks: every SciFact document chunked by the runtime's chunker (9,710 chunks) with its real
MiniLM embedding (computed once, cached under ~/.cache/ragops/benchmarks). A size beyond the
real chunks is filled with variants: variant of chunk i = chunk i blended with a random chunk
j by a weight a in [0.1, 0.4], the embedding normalize((1 - a) x_i + a x_j) and the text the
text of i followed by the first a-fraction of the words of j. Variants stay on the data's own
manifold (rather than isotropic noise, which real embeddings lack) and vary the text
(so keyword search does not see exact duplicates). Rows go in through the runtime's own
write path (`Store.write_chunks`: chunks, term statistics, postings) with the HNSW index
dropped, which is then built in one go.

Queries: SciFact test claims sent to `POST /api/v1/search` (top_k 10, generation off, no
result cache, each query new to the embedding cache) after a warm-up; latency is measured at
the client. The first keyword search of a collection loads its postings into the API's
in-memory index; its time is reported apart (`first_keyword_search_ms`). recall@10: HNSW
as the service queries it vs exact search (a sequential scan). Postgres runs
with shared_buffers=1GB (its default 128MB is below the data at 100k).
Aim: hybrid p95 < 50 ms at 100k with recall@10 >= 0.95.
Run: make bench-query_latency [ARGS=--quick]   (--quick: 2k chunks from 200 real ones)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from benchmarks._common import emit, percentile, run
from benchmarks._runtime import DEFAULT_DATASET, Beir, api_server, doc_text, load_beir, services
from rag_runtime.settings import Settings

STRATEGIES = ("vector", "keyword", "hybrid")
EF_SEARCH = Settings().hnsw_ef_search
BLEND = (0.1, 0.4)
ROWS_PER_DOCUMENT = 200
POSTGRES_SETTINGS = {"shared_buffers": "1GB", "maintenance_work_mem": "1GB"}


def real_chunks(data: Beir, dataset: Path, limit: int) -> tuple[list[str], np.ndarray]:
    """The dataset's chunks and their embeddings, cached by dataset content and model."""
    from hack.paths import cache_dir
    from rag_runtime.chunking import Chunker
    from rag_runtime.embedding import sentence_transformer_embedder

    embedder = sentence_transformer_embedder(Settings())
    corpus = (dataset / "corpus.jsonl").read_bytes()
    key = hashlib.sha256(corpus + f"{embedder.model_name}:{embedder.max_tokens}".encode())
    cache = cache_dir() / "benchmarks" / f"chunks-{key.hexdigest()[:16]}-{limit}"
    if (cache / "vectors.npy").exists():
        texts = json.loads((cache / "texts.json").read_text())
        return texts, np.load(cache / "vectors.npy")
    chunker = Chunker(embedder.count_tokens, max_tokens=embedder.max_tokens - 2, overlap=32)
    texts = []
    for doc in data.corpus.values():
        texts.extend(c.text for c in chunker.split(doc_text(doc)))
        if len(texts) >= limit:
            break
    texts = texts[:limit]
    print(f"embedding {len(texts)} real chunks (cached afterwards)", file=sys.stderr)
    vectors = asyncio.run(embedder.embed(texts))
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "texts.json").write_text(json.dumps(texts))
    np.save(cache / "vectors.npy", vectors)
    return texts, vectors


def synthesize(texts: list[str], vectors: np.ndarray, size: int) -> tuple[list[str], np.ndarray]:
    """The real chunks, then blended variants of them up to `size` rows (deterministic)."""
    n = len(texts)
    if size <= n:
        return texts[:size], vectors[:size]
    rng = np.random.default_rng(size)
    extra = size - n
    i = np.arange(extra) % n
    j = (i + rng.integers(1, n, size=extra)) % n
    a = rng.uniform(*BLEND, size=extra).astype(np.float32)
    blended = (1 - a)[:, None] * vectors[i] + a[:, None] * vectors[j]
    blended /= np.linalg.norm(blended, axis=1, keepdims=True)
    words = [t.split() for t in texts]
    variants = [
        texts[ii] + " " + " ".join(words[jj][: max(1, round(aa * len(words[jj])))])
        for ii, jj, aa in zip(i.tolist(), j.tolist(), a.tolist(), strict=True)
    ]
    return texts + variants, np.vstack([vectors, blended]).astype(np.float32)


async def load(url: str, name: str, texts: list[str], vectors: np.ndarray) -> None:
    """Store the rows through the runtime's write path, then build the HNSW index once."""
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
            name, description="", model="all-MiniLM-L6-v2", dimensions=384
        )
        start = time.perf_counter()
        for lo in range(0, len(texts), ROWS_PER_DOCUMENT):
            part = texts[lo : lo + ROWS_PER_DOCUMENT]
            doc, _ = await store.create_document(
                collection,
                content=f"{name} rows {lo}..{lo + len(part) - 1}",
                title=f"rows {lo}",
                source=None,
                content_type="text/plain",
                metadata={"block": lo // ROWS_PER_DOCUMENT},
            )
            chunks = [Chunk(o, t, 0) for o, t in enumerate(part)]
            await store.write_chunks(doc, chunks, vectors[lo : lo + len(part)])
        written = time.perf_counter() - start
    finally:
        await db.close()
    with psycopg.connect(url, autocommit=True) as conn:
        start = time.perf_counter()
        conn.execute(
            "CREATE INDEX chunks_embedding_384 ON chunks USING hnsw "
            "((embedding::vector(384)) vector_cosine_ops) WHERE embedding_dim = 384"
        )
        conn.execute("VACUUM ANALYZE")
        built = time.perf_counter() - start
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(
            f"{name}: {len(texts)} chunks written in {written:.0f}s, HNSW built in {built:.0f}s, "
            f"database {size.fetchone()[0]}",  # type: ignore[index]
            file=sys.stderr,
        )


def hnsw_recall(url: str, name: str, queries: np.ndarray) -> float:
    """recall@10 of HNSW (ef_search as the service sets it) against exact search."""
    sql = (
        "SELECT ch.id FROM chunks ch JOIN collections c ON c.id = ch.collection_id "
        "WHERE c.name = %s AND ch.embedding_dim = 384 "
        "ORDER BY ch.embedding::vector(384) <=> %s::vector(384) LIMIT 10"
    )
    hits = 0
    with psycopg.connect(url) as conn:
        # A prepared statement keeps its plan: `enable_indexscan = off` would not take effect
        # and "exact" would silently be the index at its default ef_search.
        conn.prepare_threshold = None
        register_vector(conn)
        for q in queries:
            with conn.transaction():
                conn.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")
                conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                approx = {r[0] for r in conn.execute(sql, (name, q))}
            with conn.transaction():
                conn.execute("SET LOCAL enable_indexscan = off")
                exact = {r[0] for r in conn.execute(sql, (name, q))}
            hits += len(approx & exact)
    return hits / (10 * len(queries))


def latencies(url: str, name: str, queries: list[str]) -> tuple[dict[str, list[float]], float]:
    """Per-strategy latencies (ms), and the first keyword search's (which loads the index)."""
    out: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    with httpx.Client(base_url=url, timeout=120) as client:
        start = time.perf_counter()
        client.post(
            "/api/v1/search", json={"collection": name, "query": queries[0], "strategy": "keyword"}
        ).raise_for_status()
        first_keyword_ms = (time.perf_counter() - start) * 1000
        for q in queries[:5]:  # warm-up
            for s in STRATEGIES:
                client.post("/api/v1/search", json={"collection": name, "query": q, "strategy": s})
        for q in queries[5:]:
            for s in STRATEGIES:
                start = time.perf_counter()
                resp = client.post(
                    "/api/v1/search",
                    json={"collection": name, "query": q, "strategy": s, "top_k": 10},
                )
                out[s].append((time.perf_counter() - start) * 1000)
                resp.raise_for_status()
    return out, first_keyword_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--quick", action="store_true", help="2k chunks from 200 real, 15 queries")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=105, help="the first 5 warm up")
    args = parser.parse_args()
    sizes = [2_000] if args.quick else args.sizes
    data = load_beir(args.dataset.resolve())
    texts, vectors = real_chunks(data, args.dataset.resolve(), 200 if args.quick else 10**9)
    queries = list(data.queries.values())[: 15 if args.quick else args.queries]
    from rag_runtime.embedding import bundled_model_path, load_model

    qvecs = load_model(bundled_model_path()).encode(queries[5:], normalize_embeddings=True)
    results: list[dict[str, Any]] = []
    with services("postgres", postgres_settings=POSTGRES_SETTINGS) as svc:
        pg = svc["postgres"]
        for size in sizes:
            name = f"c{size}"
            url = pg.create_database(f"latency_{size}")
            rows, row_vectors = synthesize(texts, vectors, size)
            asyncio.run(load(url, name, rows, row_vectors))
            recall = hnsw_recall(url, name, qvecs)
            with api_server(database_url=url) as api:
                lat, first_keyword_ms = latencies(api, name, queries)
            results.append(
                {
                    "chunks": size,
                    "real_chunks": min(size, len(texts)),
                    "p50_ms": {s: round(percentile(v, 50), 2) for s, v in lat.items()},
                    "p95_ms": {s: round(percentile(v, 95), 2) for s, v in lat.items()},
                    "recall_at_10": round(recall, 4),
                    "first_keyword_search_ms": round(first_keyword_ms, 1),
                }
            )
            print(results[-1], file=sys.stderr)
    emit(
        "query_latency",
        params={
            "sizes": sizes,
            "real_chunks": len(texts),
            "variants": f"blend of two real chunks, weight {BLEND[0]}..{BLEND[1]}",
            "queries": len(queries) - 5,
            "top_k": 10,
            "ef_search": EF_SEARCH,
            "postgres": POSTGRES_SETTINGS,
            "quick": args.quick,
        },
        results=results,
        aim={"hybrid_p95_ms_at_100k": 50, "recall_at_10": 0.95},
    )


if __name__ == "__main__":
    run(main)
