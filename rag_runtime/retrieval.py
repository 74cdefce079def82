"""Retrieval strategies (vector, keyword, hybrid, graph) over one collection, with fusion."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag_runtime.cache import Cache
from rag_runtime.domain import FusionMethod, RetrievalStrategy
from rag_runtime.embedding import Embedder, Vectors
from rag_runtime.errors import ConflictError, EmbeddingMismatchError
from rag_runtime.graph import GraphStore
from rag_runtime.metrics import Metrics
from rag_runtime.schemas import SearchHit, SearchRequest
from rag_runtime.settings import Settings
from rag_runtime.store import Collection, Scored, Store

HYBRID_MIN_DEPTH = 50  # candidates each side contributes to fusion


@dataclass(frozen=True)
class Plan:
    strategy: RetrievalStrategy
    top_k: int
    threshold: float
    fusion: FusionMethod
    rrf_k: int
    vector_weight: float
    filters: dict[str, Any] | None


def check_embedding_compatible(collection: Collection, embedder: Embedder) -> None:
    if (
        collection.embedding_model != embedder.model_name
        or collection.embedding_dimensions != embedder.dimensions
    ):
        raise EmbeddingMismatchError(
            f"collection {collection.name!r} was built with {collection.embedding_model} "
            f"({collection.embedding_dimensions} dimensions) but this runtime embeds with "
            f"{embedder.model_name} ({embedder.dimensions} dimensions); use a new collection "
            "or the original model"
        )


def fuse_rrf(lists: dict[str, list[Scored]], *, k: int, weights: dict[str, float]) -> list[Scored]:
    """Reciprocal rank fusion: sum of weight / (k + rank) over the lists a chunk is in."""
    fused: dict[int, Scored] = {}
    for name, hits in lists.items():
        for rank, hit in enumerate(hits, start=1):
            entry = fused.setdefault(hit.chunk_id, Scored(hit.chunk_id, 0.0, {"fusion": "rrf"}))
            entry.score += weights.get(name, 1.0) / (k + rank)
            entry.evidence[name] = {"rank": rank, "score": round(hit.score, 6), **hit.evidence}
    return sorted(fused.values(), key=lambda h: (-h.score, h.chunk_id))


def fuse_weighted(lists: dict[str, list[Scored]], *, weights: dict[str, float]) -> list[Scored]:
    """Convex combination of per-list min-max normalized scores (missing = 0)."""
    fused: dict[int, Scored] = {}
    for name, hits in lists.items():
        if not hits:
            continue
        scores = np.array([h.score for h in hits], dtype=np.float64)
        lo, hi = float(scores.min()), float(scores.max())
        span = hi - lo if hi > lo else 1.0
        for rank, hit in enumerate(hits, start=1):
            norm = (hit.score - lo) / span if hi > lo else 1.0
            entry = fused.setdefault(
                hit.chunk_id, Scored(hit.chunk_id, 0.0, {"fusion": "weighted"})
            )
            entry.score += weights.get(name, 1.0) * norm
            entry.evidence[name] = {
                "rank": rank,
                "score": round(hit.score, 6),
                "normalized": round(norm, 6),
                **hit.evidence,
            }
    return sorted(fused.values(), key=lambda h: (-h.score, h.chunk_id))


class Retriever:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        embedder: Embedder,
        cache: Cache,
        graph: GraphStore | None,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.cache = cache
        self.graph = graph
        self.metrics = metrics

    def plan(self, req: SearchRequest) -> Plan:
        s = self.settings
        return Plan(
            strategy=req.strategy or s.retrieval_strategy,
            top_k=req.top_k or s.top_k,
            threshold=(
                req.similarity_threshold
                if req.similarity_threshold is not None
                else s.similarity_threshold
            ),
            fusion=req.fusion or s.fusion,
            rrf_k=req.rrf_k or s.rrf_k,
            vector_weight=(
                req.vector_weight if req.vector_weight is not None else s.hybrid_vector_weight
            ),
            filters=req.filters,
        )

    def _observe_lookup(self, cache: str, hit: bool) -> None:
        """Count a lookup of an enabled cache (a disabled cache is never looked up)."""
        if self.cache.enabled:
            self.metrics.cache_lookups.labels(cache, "hit" if hit else "miss").inc()

    async def embed_query(self, text: str) -> Vectors:
        cached = await self.cache.get_embedding(self.embedder.model_name, text)
        hit = cached is not None and cached.shape == (self.embedder.dimensions,)
        self._observe_lookup("embedding", hit)
        if cached is not None and hit:
            return cached
        vector = (await self.embedder.embed([text]))[0]
        await self.cache.put_embedding(self.embedder.model_name, text, vector)
        return np.asarray(vector, dtype=np.float32)

    async def search(
        self, collection: Collection, req: SearchRequest
    ) -> tuple[list[SearchHit], Plan, bool]:
        """Top-k hits for the request; the bool says whether they came from the cache."""
        plan = self.plan(req)
        if plan.strategy is RetrievalStrategy.GRAPH and self.graph is None:
            raise ConflictError(  # the runtime's configuration, not an outage
                "strategy: graph retrieval is off: no Neo4j configured (set RAG_NEO4J_URI)"
            )
        if plan.strategy is not RetrievalStrategy.KEYWORD:
            check_embedding_compatible(collection, self.embedder)
        key = {"q": req.query, "plan": plan.__dict__, "collection_id": collection.id}
        cached = await self.cache.get_results(collection, key)
        self._observe_lookup("results", cached is not None)
        if cached is not None:
            hits = [SearchHit.model_validate(h) for h in cached]
            self._observe_empty(plan, hits)
            return hits, plan, True
        start = time.perf_counter()
        try:
            scored = await self._scored(collection, req.query, plan)
        finally:
            self.metrics.retrieval_seconds.labels(plan.strategy.value).observe(
                time.perf_counter() - start
            )
        rows = await self.store.fetch_chunks([s.chunk_id for s in scored])
        hits = [
            SearchHit(
                chunk_id=s.chunk_id,
                document_id=rows[s.chunk_id].document_id,
                document_title=rows[s.chunk_id].document_title,
                ordinal=rows[s.chunk_id].ordinal,
                text=rows[s.chunk_id].text,
                metadata=rows[s.chunk_id].metadata,
                score=round(s.score, 6),
                evidence=s.evidence,
            )
            for s in scored
            if s.chunk_id in rows
        ]
        await self.cache.put_results(collection, key, [h.model_dump(mode="json") for h in hits])
        self._observe_empty(plan, hits)
        return hits, plan, False

    def _observe_empty(self, plan: Plan, hits: list[SearchHit]) -> None:
        if not hits:
            self.metrics.empty_searches.labels(plan.strategy.value).inc()

    async def _scored(self, collection: Collection, query: str, plan: Plan) -> list[Scored]:
        k = plan.top_k
        if plan.strategy is RetrievalStrategy.VECTOR:
            return await self._vector(collection, query, plan, k)
        if plan.strategy is RetrievalStrategy.KEYWORD:
            return await self.store.search_keyword(collection, query, k=k, filters=plan.filters)
        if plan.strategy is RetrievalStrategy.GRAPH:
            assert self.graph is not None
            hits = await self.graph.search(collection.id, query, k=k * 4)
            if plan.filters and hits:
                allowed = await self._filter_ids(collection, [h.chunk_id for h in hits], plan)
                hits = [h for h in hits if h.chunk_id in allowed]
            return hits[:k]
        depth = max(k, HYBRID_MIN_DEPTH)
        # Both sides run at once, on two pooled connections.
        vector, keyword = await asyncio.gather(
            self._vector(collection, query, plan, depth),
            self.store.search_keyword(collection, query, k=depth, filters=plan.filters),
        )
        lists = {"vector": vector, "keyword": keyword}
        weights = {"vector": plan.vector_weight, "keyword": 1.0 - plan.vector_weight}
        if plan.fusion is FusionMethod.RRF:
            # Equal weights give plain RRF; the factor 2 keeps scores comparable to it.
            fused = fuse_rrf(lists, k=plan.rrf_k, weights={n: 2 * w for n, w in weights.items()})
        else:
            fused = fuse_weighted(lists, weights=weights)
        return fused[:k]

    async def _vector(self, collection: Collection, query: str, plan: Plan, k: int) -> list[Scored]:
        vector = await self.embed_query(query)
        hits = await self.store.search_vector(
            collection,
            vector,
            k=k,
            filters=plan.filters,
            ef_search=self.settings.hnsw_ef_search,
        )
        return [h for h in hits if h.score >= plan.threshold]

    async def _filter_ids(self, collection: Collection, ids: list[int], plan: Plan) -> set[int]:
        rows = await self.store.fetch_chunks(ids)
        allowed = set()
        for cid, row in rows.items():
            if all(_matches(row.metadata.get(k), v) for k, v in (plan.filters or {}).items()):
                allowed.add(cid)
        return allowed


def _matches(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict) and "$in" in wanted:
        return any(_matches(actual, w) for w in wanted["$in"])
    return bool(actual == wanted)
