"""Search latency (p50/p95 per strategy) at 10k and 100k chunks, and HNSW recall@10.

Chunk vectors: the real MiniLM embeddings of a base set of SciFact chunks (chunked by the
runtime's chunker), then copies of that set with a deterministic perturbation (Gaussian
noise, sigma 0.05 per dimension before re-normalizing; copy 0 is exact) until the target size;
each copy keeps its chunk's text, so keyword search sees the SciFact text repeated. Rows are
bulk-loaded with COPY, then the HNSW index is built. Queries are SciFact test claims sent to
`POST /api/v1/search` (top_k 10, generation off, no result cache) after a warm-up; latency
is measured at the client. recall@10: HNSW (as the service queries it) vs exact search.
Aim: hybrid p95 < 50 ms at 100k with recall@10 >= 0.95.
Run: make bench-query_latency [ARGS=--quick]   (--quick: 2k chunks only)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from benchmarks._common import emit, percentile
from benchmarks._runtime import DEFAULT_DATASET, api_server, doc_text, load_beir, services
from rag_runtime import migrate
from rag_runtime.settings import Settings

STRATEGIES = ("vector", "keyword", "hybrid")
SIGMA = 0.05
EF_SEARCH = Settings().hnsw_ef_search


def base_chunks(n: int) -> tuple[list[str], np.ndarray, Any]:
    from rag_runtime.embedding import sentence_transformer_embedder

    embedder = sentence_transformer_embedder(Settings())
    from rag_runtime.chunking import Chunker

    chunker = Chunker(embedder.count_tokens, max_tokens=embedder.max_tokens - 2, overlap=32)
    data = load_beir(DEFAULT_DATASET.resolve())
    texts: list[str] = []
    for doc in data.corpus.values():
        texts.extend(c.text for c in chunker.split(doc_text(doc)))
        if len(texts) >= n:
            break
    texts = texts[:n]
    print(f"embedding {len(texts)} base chunks", file=sys.stderr)
    vectors = embedder.encode(texts)
    return texts, vectors, data


def perturbed(base: np.ndarray, copy: int) -> np.ndarray:
    if copy == 0:
        return base
    rng = np.random.default_rng(copy)
    noisy = base + rng.normal(0.0, SIGMA, size=base.shape).astype(np.float32)
    normalized: np.ndarray = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return normalized


def load(url: str, name: str, texts: list[str], base: np.ndarray, size: int) -> None:
    migrate.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS chunks_embedding_384")
        cid = conn.execute(
            "INSERT INTO collections (name, embedding_model, embedding_dimensions) "
            "VALUES (%s, 'all-MiniLM-L6-v2', 384) RETURNING id",
            (name,),
        ).fetchone()[0]  # type: ignore[index]
        tsv = [
            r[0]
            for r in conn.execute(
                "SELECT to_tsvector('english', t)::text "
                "FROM unnest(%s::text[]) WITH ORDINALITY u(t, o) ORDER BY o",
                (texts,),
            )
        ]
        lengths = [
            r[0]
            for r in conn.execute(
                "SELECT (SELECT coalesce(sum(cardinality(x.positions)), 0) "
                "FROM unnest(to_tsvector('english', t)) x) "
                "FROM unnest(%s::text[]) WITH ORDINALITY u(t, o) ORDER BY o",
                (texts,),
            )
        ]
        copies = -(-size // len(texts))
        written = 0
        for copy in range(copies):
            vectors = perturbed(base, copy)
            doc_id = uuid.uuid5(uuid.NAMESPACE_OID, f"{name}:{copy}")
            conn.execute(
                "INSERT INTO documents (id, collection_id, title, content_type, content, "
                "content_hash, status) VALUES (%s, %s, %s, 'text/plain', '', %s, 'ready')",
                (doc_id, cid, f"copy {copy}", hashlib.sha256(str(doc_id).encode()).hexdigest()),
            )
            buf = io.StringIO()
            for i, text in enumerate(texts):
                if written >= size:
                    break
                vec = "[" + ",".join(f"{x:.6f}" for x in vectors[i]) + "]"
                row = [
                    str(doc_id),
                    str(cid),
                    str(i),
                    text,
                    tsv[i],
                    str(lengths[i]),
                    vec,
                    "384",
                    f'{{"copy": {copy}}}',
                ]
                buf.write("\t".join(_copy_escape(v) for v in row) + "\n")
                written += 1
            with conn.cursor().copy(
                "COPY chunks (document_id, collection_id, ordinal, text, tsv, length, "
                "embedding, embedding_dim, metadata) FROM STDIN"
            ) as cp:
                cp.write(buf.getvalue())
        conn.execute(
            "INSERT INTO term_stats (collection_id, lexeme, df) SELECT %s, u.lexeme, count(*) "
            "FROM chunks ch, unnest(ch.tsv) u WHERE ch.collection_id = %s GROUP BY u.lexeme",
            (cid, cid),
        )
        conn.execute(
            "UPDATE collections SET chunk_count = s.n, total_length = s.len FROM (SELECT "
            "count(*) AS n, sum(length) AS len FROM chunks WHERE collection_id = %s) s "
            "WHERE id = %s",
            (cid, cid),
        )
        start = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute(
            "CREATE INDEX chunks_embedding_384 ON chunks USING hnsw "
            "((embedding::vector(384)) vector_cosine_ops) WHERE embedding_dim = 384"
        )
        conn.execute("ANALYZE")
        print(
            f"{name}: {written} chunks, HNSW built in {time.perf_counter() - start:.0f}s",
            file=sys.stderr,
        )


def _copy_escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def hnsw_recall(url: str, name: str, queries: np.ndarray) -> float:
    sql = (
        "SELECT ch.id FROM chunks ch JOIN collections c ON c.id = ch.collection_id "
        "WHERE c.name = %s AND ch.embedding_dim = 384 "
        "ORDER BY ch.embedding::vector(384) <=> %s::vector(384) LIMIT 10"
    )
    hits = 0
    with psycopg.connect(url) as conn:
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


def latencies(url: str, name: str, queries: list[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    with httpx.Client(base_url=url, timeout=60) as client:
        for q in queries[:5]:  # warm-up
            for s in STRATEGIES:
                client.post("/api/v1/search", json={"collection": name, "query": q, "strategy": s})
        for q in queries:
            for s in STRATEGIES:
                start = time.perf_counter()
                resp = client.post(
                    "/api/v1/search",
                    json={"collection": name, "query": q, "strategy": s, "top_k": 10},
                )
                out[s].append((time.perf_counter() - start) * 1000)
                resp.raise_for_status()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2k chunks only, 10 queries")
    parser.add_argument("--base", type=int, default=1000, help="real chunks embedded")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--keyword-budget",
        type=int,
        default=0,
        help="RAG_KEYWORD_CANDIDATE_BUDGET for the service (0 = exact BM25, the default)",
    )
    args = parser.parse_args()
    sizes = [2_000] if args.quick else [10_000, 100_000]
    n_base = 100 if args.quick else args.base
    n_queries = 10 if args.quick else args.queries
    texts, base, data = base_chunks(n_base)
    queries = list(data.queries.values())[:n_queries]
    from rag_runtime.embedding import bundled_model_path, load_sentence_transformer

    qvecs = load_sentence_transformer(bundled_model_path()).encode(
        queries, normalize_embeddings=True
    )
    results: list[dict[str, Any]] = []
    with services("postgres") as svc:
        pg = svc["postgres"]
        for size in sizes:
            name = f"c{size}"
            url = pg.create_database(f"latency_{size}")
            load(url, name, texts, base, size)
            recall = hnsw_recall(url, name, qvecs)
            with api_server(database_url=url, keyword_candidate_budget=args.keyword_budget) as api:
                lat = latencies(api, name, queries)
            results.append(
                {
                    "chunks": size,
                    "p50_ms": {s: round(percentile(v, 50), 2) for s, v in lat.items()},
                    "p95_ms": {s: round(percentile(v, 95), 2) for s, v in lat.items()},
                    "recall_at_10": round(recall, 4),
                }
            )
            print(results[-1], file=sys.stderr)
    emit(
        "query_latency",
        params={
            "sizes": sizes,
            "base_real_chunks": len(texts),
            "perturbation_sigma": SIGMA,
            "queries": len(queries),
            "top_k": 10,
            "ef_search": EF_SEARCH,
            "keyword_candidate_budget": args.keyword_budget,
            "quick": args.quick,
            "vectors": "real MiniLM chunks + deterministic noise",
        },
        results=results,
        aim={"hybrid_p95_ms_at_100k": 50, "recall_at_10": 0.95},
    )


if __name__ == "__main__":
    main()
