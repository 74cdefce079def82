"""rag_runtime_cache_lookups_total{cache,result}: what the dashboard's cache hit rate reads.

Aspects covered, on real Postgres and Redis: a first search misses both caches (results and
query embedding), the same search again hits the results cache; without Redis no lookup is
counted (no cache, no hit rate).
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from hack.services import RedisService
from tests.integration.runtime.helpers import WorkerThread, add_documents, api

pytestmark = pytest.mark.integration

DOCS = [{"title": "zyxase", "text": "The enzyme zyxase was isolated from deep-sea bacteria."}]


def lookups(client: TestClient) -> dict[tuple[str, str], float]:
    text = client.get("/metrics").text
    pattern = r'rag_runtime_cache_lookups_total\{cache="(\w+)",result="(\w+)"\} ([0-9.e+]+)'
    return {(c, r): float(v) for c, r, v in re.findall(pattern, text)}


def test_searches_count_cache_misses_then_hits(database_url: str, redis: RedisService) -> None:
    with (
        api(database_url=database_url, redis_url=redis.url, queue_name="rag:cachem") as c,
        WorkerThread(database_url=database_url, redis_url=redis.url, queue_name="rag:cachem"),
    ):
        add_documents(c, "cachem", DOCS)
        body = {"collection": "cachem", "query": "deep-sea enzyme", "strategy": "vector"}
        assert c.post("/api/v1/search", json=body).status_code == 200
        first = lookups(c)
        assert first[("results", "miss")] == 1
        assert first[("embedding", "miss")] == 1
        assert ("results", "hit") not in first
        assert c.post("/api/v1/search", json=body).status_code == 200
        second = lookups(c)
        assert second[("results", "hit")] == 1
        assert second[("results", "miss")] == 1


def test_no_lookups_counted_without_redis(database_url: str) -> None:
    with api(database_url=database_url) as c:
        add_documents(c, "cachen", DOCS)
        body = {"collection": "cachen", "query": "deep-sea enzyme", "strategy": "vector"}
        assert c.post("/api/v1/search", json=body).status_code == 200
        assert lookups(c) == {}
