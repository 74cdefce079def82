"""Search and answers (JSON or server-sent events)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from rag_runtime.api.deps import PrincipalDep, RuntimeDep, require
from rag_runtime.api.responses import error_responses
from rag_runtime.domain import RetrievalStrategy
from rag_runtime.errors import RagError
from rag_runtime.generation import citations_in
from rag_runtime.runtime import Runtime
from rag_runtime.schemas import (
    QueryRequest,
    QueryResponse,
    SearchHit,
    SearchRequest,
    SearchResponse,
)

router = APIRouter(prefix="/api/v1", tags=["retrieval"], responses=error_responses())
SSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer (JSON), or with `stream: true` server-sent events",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "description": "One event: results, token, done or error (data is JSON)",
                    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
                }
            }
        },
    }
}


async def _retrieve(
    runtime: Runtime, principal: PrincipalDep, body: SearchRequest
) -> tuple[list[SearchHit], RetrievalStrategy, bool]:
    require(principal, body.collection)
    collection = await runtime.store.get_collection(body.collection)
    hits, plan, cached = await runtime.retriever.search(collection, body)
    return hits, plan.strategy, cached


@router.post("/search")
async def search(
    body: SearchRequest, principal: PrincipalDep, runtime: RuntimeDep
) -> SearchResponse:
    """Top-k chunks by vector, keyword, hybrid or graph retrieval, with evidence."""
    start = time.perf_counter()
    hits, strategy, cached = await _retrieve(runtime, principal, body)
    return SearchResponse(
        collection=body.collection,
        strategy=strategy,
        results=hits,
        cached=cached,
        took_ms=round((time.perf_counter() - start) * 1000, 3),
    )


@router.post("/query", response_model=QueryResponse, responses=SSE)
async def query(
    body: QueryRequest, principal: PrincipalDep, runtime: RuntimeDep
) -> QueryResponse | StreamingResponse:
    """Retrieve, then answer with citations; `stream: true` sends server-sent events:
    `results`, then `token` events, then `done` (answer and citations) or `error`."""
    hits, strategy, _ = await _retrieve(runtime, principal, body)
    generator = runtime.generator
    if body.stream:
        return StreamingResponse(
            _sse(runtime, body, hits, strategy),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    start = time.perf_counter()
    try:
        parts = [t async for t in generator.stream(body.query, hits, body.max_tokens)]
    finally:
        runtime.metrics.generation_seconds.labels(generator.provider).observe(
            time.perf_counter() - start
        )
    answer = "".join(parts)
    return QueryResponse(
        answer=answer,
        citations=citations_in(answer, hits),
        results=hits,
        provider=generator.provider,
        model=generator.model,
        strategy=strategy,
    )


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


async def _sse(
    runtime: Runtime, body: QueryRequest, hits: list[SearchHit], strategy: RetrievalStrategy
) -> AsyncIterator[str]:
    generator = runtime.generator
    yield _event(
        "results",
        {"strategy": strategy.value, "results": [h.model_dump(mode="json") for h in hits]},
    )
    parts: list[str] = []
    start = time.perf_counter()
    try:
        async for token in generator.stream(body.query, hits, body.max_tokens):
            parts.append(token)
            yield _event("token", {"text": token})
    except RagError as exc:
        yield _event("error", {"status": exc.status_code, "detail": exc.message})
        return
    finally:
        runtime.metrics.generation_seconds.labels(generator.provider).observe(
            time.perf_counter() - start
        )
    answer = "".join(parts)
    yield _event(
        "done",
        {
            "answer": answer,
            "citations": [c.model_dump(mode="json") for c in citations_in(answer, hits)],
            "provider": generator.provider,
            "model": generator.model,
        },
    )
