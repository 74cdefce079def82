"""Deleted content is never served from the result cache (real Redis, real Postgres).

Covers: a search that straddles a delete (its hits read before the delete commits, stored
after it) leaves nothing a later search is served; a Redis that is unreachable while a
document is deleted (so no invalidation could reach it) serves no deleted hits once back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hack.services import RedisService
from tests.integration.runtime.helpers import TcpProxy, WorkerThread, add_documents, api

pytestmark = pytest.mark.integration

DOCS = [
    {"title": "comets", "text": "Comets are icy bodies that grow tails near the sun."},
    {"title": "icy moons", "text": "Icy moons like Europa may hide oceans under their crust."},
]
QUERY = "icy bodies"


def _titles(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [h["document_title"] for h in resp.json()["results"]]


@pytest.fixture
def proxy(redis: RedisService) -> Iterator[TcpProxy]:
    p = TcpProxy("127.0.0.1", redis.port)
    yield p
    p.down()


@contextlib.contextmanager
def _client(database_url: str, proxy: TcpProxy) -> Iterator[TestClient]:
    """The API and a worker on Redis behind `proxy` (the worker reaches Redis directly)."""
    common = {"database_url": database_url, "queue_name": f"rag:cache:{proxy.port}"}
    with (
        WorkerThread(**common, redis_url=f"redis://127.0.0.1:{proxy.target[1]}/0"),
        api(**common, redis_url=f"redis://127.0.0.1:{proxy.port}/0") as c,
    ):
        yield c


def test_a_search_straddling_a_delete_caches_nothing_stale(
    database_url: str, proxy: TcpProxy
) -> None:
    with _client(database_url, proxy) as c:
        ids = add_documents(c, "straddle", DOCS)
        body = {"collection": "straddle", "query": QUERY, "strategy": "hybrid"}
        store = c.app.state.runtime.store  # type: ignore[attr-defined]
        fetch = store.fetch_chunks
        reached, release = threading.Event(), threading.Event()

        async def held_after_reading(chunk_ids: list[int]) -> Any:
            rows = await fetch(chunk_ids)  # the hits as they are before the delete
            reached.set()
            await asyncio.to_thread(release.wait, 60)  # the delete runs meanwhile, on this loop
            return rows

        store.fetch_chunks = held_after_reading
        with ThreadPoolExecutor(1) as pool:
            straddling = pool.submit(c.post, "/api/v1/search", json=body)
            assert reached.wait(60)
            store.fetch_chunks = fetch
            deleted = c.delete(f"/api/v1/collections/straddle/documents/{ids[0]}")
            assert deleted.status_code == 204
            release.set()
            assert "comets" in _titles(straddling.result(60))  # read before the delete
        after = c.post("/api/v1/search", json=body)
        assert "comets" not in _titles(after)
        again = c.post("/api/v1/search", json=body)
        assert "comets" not in _titles(again)
        assert again.json()["cached"] is True


def test_a_delete_while_redis_is_unreachable_serves_no_deleted_hits(
    database_url: str, proxy: TcpProxy
) -> None:
    with _client(database_url, proxy) as c:
        ids = add_documents(c, "outage", DOCS)
        body = {"collection": "outage", "query": QUERY, "strategy": "hybrid"}
        first = c.post("/api/v1/search", json=body)
        cached = c.post("/api/v1/search", json=body)
        assert cached.json()["cached"] is True
        assert "comets" in _titles(first)
        proxy.down()
        assert c.delete(f"/api/v1/collections/outage/documents/{ids[0]}").status_code == 204
        proxy.up()
        assert "comets" not in _titles(c.post("/api/v1/search", json=body))


def test_a_client_sees_its_own_delete(database_url: str, proxy: TcpProxy) -> None:
    with _client(database_url, proxy) as c:
        client = c
        ids = add_documents(client, "own", DOCS)
        body = {"collection": "own", "query": QUERY}
        assert "comets" in _titles(client.post("/api/v1/search", json=body))
        client.delete(f"/api/v1/collections/own/documents/{ids[0]}")
        assert "comets" not in _titles(client.post("/api/v1/search", json=body))
