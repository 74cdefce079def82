"""The RAG quality gate: nDCG@10 of the canary against stable's on a golden set.

The golden set is a ConfigMap key holding JSON
`{"collection": "docs", "queries": [{"query": "...", "relevant": ["<document id or title>"]}]}`.
Each query is searched (`POST /api/v1/search`, top 10, marked as a probe) on one canary pod
and one stable pod; a document's rank is that of its first chunk. Binary relevance.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from rag_operator.models import API_PORT
from rag_operator.models.naming import PROBE_HEADER
from rag_operator.models.rollout import QualityGate
from rag_operator.models.status import Measurement
from rag_operator.release.probes import auth_headers

K = 10
MAX_QUERIES = 50


class GoldenSetError(ValueError):
    """The golden set is missing or malformed (the message names the ConfigMap)."""


@dataclass(frozen=True)
class GoldenQuery:
    query: str
    relevant: frozenset[str]


@dataclass(frozen=True)
class GoldenSet:
    collection: str
    queries: tuple[GoldenQuery, ...]


def parse_golden_set(text: str, where: str) -> GoldenSet:
    try:
        data = json.loads(text)
        collection = str(data["collection"])
        queries = tuple(
            GoldenQuery(str(q["query"]), frozenset(str(r) for r in q["relevant"]))
            for q in data["queries"]
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise GoldenSetError(
            f"{where}: expected JSON {{collection, queries: [{{query, relevant}}]}}: {exc}"
        ) from exc
    if not queries:
        raise GoldenSetError(f"{where}: no queries")
    return GoldenSet(collection, queries[:MAX_QUERIES])


def ndcg_at_k(ranked: Sequence[str], relevant: frozenset[str], k: int = K) -> float:
    """Binary-relevance nDCG@k of one ranking."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, doc in enumerate(ranked[:k]) if doc in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal


def ranked_documents(hits: Sequence[dict[str, Any]], relevant: frozenset[str]) -> list[str]:
    """Documents in the order of their first chunk; a hit counts by id or by title."""
    out: list[str] = []
    for hit in hits:
        doc_id, title = str(hit.get("document_id", "")), str(hit.get("document_title", ""))
        key = title if title in relevant and doc_id not in relevant else doc_id
        if key not in out:
            out.append(key)
    return out


def gate_measurement(gate: QualityGate, canary: float, stable: float) -> Measurement:
    floor = gate.min_fraction_of_stable * stable
    return Measurement(
        metric="ndcg@10",
        result="pass" if canary >= floor else "fail",
        value=round(canary, 4),
        limit=f">= {gate.min_fraction_of_stable:g} x stable's {stable:.4g}",
    )


async def mean_ndcg(
    session: aiohttp.ClientSession, ip: str, golden: GoldenSet, key: str | None = None
) -> float:
    url = f"http://{ip}:{API_PORT}/api/v1/search"
    headers = auth_headers(key, PROBE_HEADER, "quality")
    total = 0.0
    for q in golden.queries:
        body = {"collection": golden.collection, "query": q.query, "top_k": K}
        async with session.post(url, json=body, headers=headers) as resp:
            resp.raise_for_status()
            hits = (await resp.json()).get("results") or []
        total += ndcg_at_k(ranked_documents(hits, q.relevant), q.relevant)
    return total / len(golden.queries)


async def run_gate(
    gate: QualityGate,
    golden: GoldenSet,
    canary_ip: str,
    stable_ip: str,
    key: str | None = None,
    timeout_s: float = 30,
) -> Measurement:
    """The gate's measurement; no data when either side cannot be asked (the limit then
    says why, e.g. a 401 for a wrong key)."""
    limit = f">= {gate.min_fraction_of_stable:g} x stable's"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s:
            canary = await mean_ndcg(s, canary_ip, golden, key)
            stable = await mean_ndcg(s, stable_ip, golden, key)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        why = str(exc)[:120] or type(exc).__name__
        return Measurement(metric="ndcg@10", result="nodata", limit=f"{limit}; {why}"[:256])
    return gate_measurement(gate, canary, stable)
