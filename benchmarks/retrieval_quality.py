"""Retrieval quality on a BEIR dataset (default SciFact) through the real service path.

Documents are ingested through the API (inline queue: chunking, MiniLM embeddings, Postgres
+ pgvector), then every test query is searched through `POST /api/v1/search` with each
strategy. Chunk hits are folded to documents (best chunk wins). Figures: nDCG@10 and
recall@100 per strategy, against bm25s (English stopwords) measured in the same run.
Documents the service rejects or fails to ingest are reported (and count as misses);
records whose text another record already has are ingested as documents of their own
(the service names the earlier one in `duplicate_of`) and reported.

Anchors (SciFact nDCG@10): BM25 0.665, bm25s 0.662, exact MiniLM 0.645, plain RRF 0.690.
Aims: vector >= 0.64, keyword >= 0.65, hybrid >= 0.70.
Run: make bench-retrieval_quality [ARGS="--quick" | ARGS="--dataset DIR"]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from benchmarks._common import emit, run
from benchmarks._runtime import (
    DEFAULT_DATASET,
    Beir,
    api_server,
    doc_text,
    load_beir,
    services,
    wait_settled,
)

STRATEGIES: dict[str, dict[str, Any]] = {
    "vector": {"strategy": "vector"},
    "keyword": {"strategy": "keyword"},
    "hybrid": {"strategy": "hybrid"},  # the service default fusion (weighted)
    "hybrid_rrf": {"strategy": "hybrid", "fusion": "rrf", "vector_weight": 0.5},
}
# Fusion settings compared in the full run (the service default is chosen from these).
VARIANTS: dict[str, dict[str, Any]] = {
    "hybrid_weighted_0.3": {"strategy": "hybrid", "fusion": "weighted", "vector_weight": 0.3},
    "hybrid_weighted_0.4": {"strategy": "hybrid", "fusion": "weighted", "vector_weight": 0.4},
    "hybrid_weighted_0.6": {"strategy": "hybrid", "fusion": "weighted", "vector_weight": 0.6},
    "hybrid_rrf_0.4": {"strategy": "hybrid", "fusion": "rrf", "vector_weight": 0.4},
    "hybrid_rrf_0.6": {"strategy": "hybrid", "fusion": "rrf", "vector_weight": 0.6},
}
CHUNK_DEPTH = 300  # chunks fetched per query, folded into >= 100 documents


def ndcg_at_10(ranked: list[str], rels: dict[str, int]) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(rels.values(), reverse=True)[:10]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_100(ranked: list[str], rels: dict[str, int]) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant & set(ranked[:100])) / len(relevant) if relevant else 0.0


def subset(data: Beir, queries: int, extra_docs: int, seed: int = 13) -> Beir:
    rng = random.Random(seed)
    qids = sorted(data.queries)[:queries]
    needed = {d for q in qids for d in data.qrels[q]}
    others = sorted(set(data.corpus) - needed)
    keep = needed | set(rng.sample(others, min(extra_docs, len(others))))
    return Beir(
        {d: data.corpus[d] for d in sorted(keep) if d in data.corpus},
        {q: data.queries[q] for q in qids},
        {q: data.qrels[q] for q in qids},
    )


def bm25s_baseline(data: Beir) -> dict[str, list[str]]:
    import bm25s

    ids = list(data.corpus)
    tokens = bm25s.tokenize(
        [doc_text(data.corpus[d]) for d in ids], stopwords="en", show_progress=False
    )
    model = bm25s.BM25()
    model.index(tokens, show_progress=False)
    qids = list(data.queries)
    qtokens = bm25s.tokenize([data.queries[q] for q in qids], stopwords="en", show_progress=False)
    k = min(100, len(ids))
    results, _ = model.retrieve(qtokens, k=k, show_progress=False)
    return {q: [ids[int(i)] for i in results[n]] for n, q in enumerate(qids)}


@dataclass
class Ingested:
    seconds: float
    documents: int  # accepted by the service
    duplicates: dict[str, str] = field(default_factory=dict)  # record -> earlier, same text
    rejected: dict[str, str] = field(default_factory=dict)  # record -> the service's reason
    failed: dict[str, str] = field(default_factory=dict)  # record -> ingestion error

    def report(self) -> dict[str, Any]:
        def sample(found: dict[str, str]) -> dict[str, str]:
            return dict(sorted(found.items())[:5])

        return {
            "documents": self.documents,
            "duplicate_text": {"count": len(self.duplicates), "examples": sample(self.duplicates)},
            "skipped_rejected": {"count": len(self.rejected), "examples": sample(self.rejected)},
            "skipped_failed": {"count": len(self.failed), "examples": sample(self.failed)},
        }


def ingest(client: httpx.Client, data: Beir, collection: str) -> Ingested:
    """Send every record; wait until each accepted one is ready or failed."""
    client.post("/api/v1/collections", json={"name": collection}).raise_for_status()
    start = time.perf_counter()
    records: dict[str, str] = {}  # document id -> record id
    duplicates: dict[str, str] = {}
    rejected: dict[str, str] = {}
    for doc_id, doc in data.corpus.items():
        resp = client.post(
            f"/api/v1/collections/{collection}/documents",
            json={"text": doc_text(doc), "title": doc_id, "metadata": {"beir_id": doc_id}},
        )
        if resp.is_client_error:
            body = resp.json()  # a 422 says it all in `message`; other errors in `detail`
            rejected[doc_id] = f"{resp.status_code}: {body.get('message') or body.get('detail')}"
            continue
        resp.raise_for_status()
        body = resp.json()
        records[body["id"]] = doc_id
        if body.get("duplicate_of"):
            duplicates[doc_id] = records.get(body["duplicate_of"], body["duplicate_of"])
    failed = wait_settled(client, collection, len(records))
    return Ingested(
        seconds=time.perf_counter() - start,
        documents=len(records),
        duplicates=duplicates,
        rejected=rejected,
        failed={records.get(d, d): error for d, error in failed.items()},
    )


def run_queries(
    client: httpx.Client, data: Beir, collection: str, body: dict[str, Any]
) -> dict[str, list[str]]:
    runs: dict[str, list[str]] = {}
    for qid, text in data.queries.items():
        resp = client.post(
            "/api/v1/search",
            json={"collection": collection, "query": text, "top_k": CHUNK_DEPTH, **body},
        )
        resp.raise_for_status()
        ranked: list[str] = []
        for hit in resp.json()["results"]:
            doc = hit["metadata"]["beir_id"]
            if doc not in ranked:
                ranked.append(doc)
        runs[qid] = ranked
    return runs


def score(runs: dict[str, list[str]], data: Beir) -> tuple[float, float]:
    n = len(data.queries)
    nd = sum(ndcg_at_10(runs[q], data.qrels[q]) for q in data.queries) / n
    rc = sum(recall_at_100(runs[q], data.qrels[q]) for q in data.queries) / n
    return round(nd, 4), round(rc, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--quick", action="store_true", help="10 queries, ~45 documents")
    parser.add_argument("--variants", action="store_true", help="also score other fusion settings")
    args = parser.parse_args()
    data = load_beir(args.dataset.resolve())
    if args.quick:
        data = subset(data, queries=10, extra_docs=30)
    print(f"corpus {len(data.corpus)} docs, {len(data.queries)} queries", file=sys.stderr)

    baseline = bm25s_baseline(data)
    base_ndcg, base_recall = score(baseline, data)

    ndcg: dict[str, float] = {}
    recall: dict[str, float] = {}
    timings: dict[str, float] = {}
    with (
        services("postgres") as svc,
        api_server(database_url=svc["postgres"].url, worker_concurrency=16) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        ingested = ingest(client, data, "beir")
        print(f"ingested in {ingested.seconds:.1f}s: {ingested.report()}", file=sys.stderr)
        strategies = {**STRATEGIES, **(VARIANTS if args.variants else {})}
        for name, body in strategies.items():
            start = time.perf_counter()
            runs = run_queries(client, data, "beir", body)
            timings[name] = round((time.perf_counter() - start) / len(data.queries) * 1000, 1)
            ndcg[name], recall[name] = score(runs, data)
            print(f"{name}: ndcg@10 {ndcg[name]} recall@100 {recall[name]}", file=sys.stderr)

    emit(
        "retrieval_quality",
        params={
            "dataset": args.dataset.name,
            "documents": len(data.corpus),
            "queries": len(data.queries),
            "quick": args.quick,
            "chunk_depth": CHUNK_DEPTH,
        },
        ndcg_at_10=ndcg,
        recall_at_100=recall,
        baseline={
            "name": "bm25s (English stopwords)",
            "ndcg_at_10": base_ndcg,
            "recall_at_100": base_recall,
        },
        ratio_to_baseline={k: round(v / base_ndcg, 3) for k, v in ndcg.items()},
        mean_query_ms=timings,
        ingest_s=round(ingested.seconds, 1),
        ingestion=ingested.report(),
    )


if __name__ == "__main__":
    run(main)
