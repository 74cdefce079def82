"""Service behaviour around the data path: auth, rate limits, health, readiness, metrics,
outages of the database (503, queued work finishes once it is back) and of Redis (optional:
only its features go), and stopping: the in-process queue, closed while its first sweep is
still getting a database connection, stops (its cancellation cannot get lost).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hack.services import PostgresService, RedisService
from rag_runtime import tasks
from rag_runtime.db import Database
from rag_runtime.errors import NotFoundError
from rag_runtime.ingest import Ingestor, InlineQueue
from rag_runtime.runtime import Runtime
from rag_runtime.store import Store
from tests.integration.runtime.helpers import (
    TcpProxy,
    WorkerThread,
    add_documents,
    api,
    free_port,
    settings,
    wait_for_document,
)

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer admin-key"}
TENANT = {"Authorization": "Bearer alpha-key"}


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[TestClient]:
    with api(database_url=database_url, api_keys=["admin-key", "alpha-key:alpha"]) as c:
        for name in ("alpha", "beta"):
            c.post("/api/v1/collections", json={"name": name}, headers=ADMIN)
        add_documents(c, "alpha", [{"text": "Alpha tenants store their notes here."}], ADMIN)
        yield c


def test_health_needs_no_key(client: TestClient) -> None:
    assert client.get("/api/v1/health").json() == {"status": "ok"}


def test_requests_without_a_key_are_401(client: TestClient) -> None:
    resp = client.get("/api/v1/collections")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    bad = client.get("/api/v1/collections", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401


def test_a_key_without_access_is_403(client: TestClient) -> None:
    assert client.get("/api/v1/collections/beta", headers=TENANT).status_code == 403
    resp = client.post("/api/v1/search", json={"collection": "beta", "query": "x"}, headers=TENANT)
    assert resp.status_code == 403
    assert client.get("/api/v1/collections/alpha", headers=TENANT).status_code == 200
    names = [c["name"] for c in client.get("/api/v1/collections", headers=TENANT).json()]
    assert names == ["alpha"]
    admin_names = {c["name"] for c in client.get("/api/v1/collections", headers=ADMIN).json()}
    assert {"alpha", "beta"} <= admin_names


def test_readiness_reports_each_dependency(client: TestClient) -> None:
    resp = client.get("/api/v1/ready")
    assert resp.status_code == 200
    checks = resp.json()["checks"]
    assert checks["database"]["status"] == "up"
    assert checks["schema"]["current"] == checks["schema"]["head"]
    assert checks["cache"]["status"] == "disabled"
    assert checks["queue"] == {"status": "up", "required": False, "kind": "inline"}
    assert checks["graph"]["status"] == "disabled"
    assert checks["embedding_model"]["dimensions"] == 384


def test_metrics_use_route_templates_and_the_prefix(client: TestClient) -> None:
    client.post("/api/v1/search", json={"collection": "alpha", "query": "notes"}, headers=ADMIN)
    client.post(
        "/api/v1/search",
        json={"collection": "alpha", "query": "qqqzzz", "strategy": "keyword"},
        headers=ADMIN,
    )
    client.post("/api/v1/query", json={"collection": "alpha", "query": "notes"}, headers=ADMIN)
    text = client.get("/metrics").text
    for name in (
        'rag_runtime_http_requests_total{method="GET",route="/api/v1/collections/{name}"',
        "rag_runtime_http_request_duration_seconds_bucket",
        'rag_runtime_retrieval_duration_seconds_count{strategy="hybrid"}',
        'rag_runtime_generation_duration_seconds_count{provider="extractive"}',
        'rag_runtime_empty_searches_total{strategy="keyword"} 1.0',
        "rag_runtime_ingestion_queue_depth 0.0",
        'rag_runtime_documents{status="ready"} 1.0',
        "rag_runtime_chunks 1.0",
        "rag_runtime_build_info{",
    ):
        assert name in text, name
    assert "alpha-key" not in text


def test_rate_limit_is_per_key_with_retry_after(database_url: str) -> None:
    if time.time() % 60 > 50:  # stay inside one one-minute window
        time.sleep(61 - time.time() % 60)
    with api(database_url=database_url, api_keys=["k1", "k2"], rate_limit_per_minute=3) as c:
        k1 = {"Authorization": "Bearer k1"}
        codes = [c.get("/api/v1/collections", headers=k1).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = c.get("/api/v1/collections", headers=k1)
        assert 1 <= int(limited.headers["Retry-After"]) <= 61
        other = c.get("/api/v1/collections", headers={"Authorization": "Bearer k2"})
        assert other.status_code == 200


def test_failed_keys_are_limited_per_address_with_retry_after(database_url: str) -> None:
    if time.time() % 60 > 50:  # stay inside one one-minute window
        time.sleep(61 - time.time() % 60)
    with api(database_url=database_url, api_keys=["k1"], auth_failures_per_minute=3) as c:
        wrong = {"Authorization": "Bearer guess"}
        codes = [c.get("/api/v1/collections", headers=wrong).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        blocked = c.get("/api/v1/collections", headers={"Authorization": "Bearer k1"})
        assert blocked.status_code == 429  # no more guesses checked from this address
        assert 1 <= int(blocked.headers["Retry-After"]) <= 61
        assert c.get("/api/v1/health").status_code == 200


def test_a_key_is_whole_even_when_it_holds_a_colon(database_url: str) -> None:
    with api(database_url=database_url, api_keys=["ab:cd:*", "t:alpha"]) as c:
        assert (
            c.get("/api/v1/collections", headers={"Authorization": "Bearer ab"}).status_code == 401
        )
        ok = c.get("/api/v1/collections", headers={"Authorization": "Bearer ab:cd"})
        assert ok.status_code == 200
        assert (
            c.get("/api/v1/collections/beta", headers={"Authorization": "Bearer t"}).status_code
            == 403
        )


def test_redis_down_disables_only_its_features(database_url: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with api(database_url=database_url, redis_url=dead) as c:
        ready = c.get("/api/v1/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"]["cache"]["status"] == "down"
        assert ready.json()["checks"]["queue"]["status"] == "down"
        search = c.post("/api/v1/search", json={"collection": "alpha", "query": "notes"})
        assert search.status_code == 200
        assert search.json()["results"]
        create = c.post("/api/v1/collections/alpha/documents", json={"text": "new note"})
        assert create.status_code == 503
        assert "queue" in create.json()["detail"]


def test_database_outage_is_503_and_queued_documents_finish_after(
    postgres: PostgresService, redis: RedisService
) -> None:
    url = postgres.create_database("rt_outage")
    proxy = TcpProxy("127.0.0.1", postgres.port)
    proxied = url.replace(f":{postgres.port}/", f":{proxy.port}/")
    common = {"database_url": proxied, "redis_url": redis.url, "queue_name": "rag:outage"}
    with api(**common) as c:
        c.post("/api/v1/collections", json={"name": "o"})
        accepted = [
            c.post("/api/v1/collections/o/documents", json={"text": f"Outage doc {i}."}).json()
            for i in range(3)
        ]
        assert all(d["status"] == "queued" for d in accepted)
        proxy.down()
        resp = c.post("/api/v1/collections/o/documents", json={"text": "during the outage"})
        assert resp.status_code == 503
        assert resp.json()["detail"].startswith("database unavailable")
        assert "Retry-After" in resp.headers
        ready = c.get("/api/v1/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"]["status"] == "down"
        with WorkerThread(**common):
            time.sleep(3)  # the worker meets the outage and backs off
            proxy.up()
            for doc in accepted:
                assert wait_for_document(c, "o", doc["id"], timeout=90)["status"] == "ready"
        assert c.get("/api/v1/ready").status_code == 200
    proxy.down()


def test_the_inline_queue_closed_right_after_start_stops(database_url: str) -> None:
    """As `rag-runtime query` on an unknown collection did: a fresh pool, the queue's first
    sweep and the request wait for connections, and the queue closes at once."""

    async def scenario() -> None:
        runtime = await Runtime.start(settings(database_url=database_url), role="cli")
        try:
            for _ in range(5):
                db = Database(database_url)
                await db.open()
                store = Store(db)
                ingestor = Ingestor(
                    store=store,
                    embedder=runtime.embedder,
                    chunker=runtime.chunker,
                    graph=None,
                    cache=runtime.cache,
                    metrics=runtime.metrics,
                )
                queue = InlineQueue(ingestor, concurrency=4)
                await queue.start()
                with pytest.raises(NotFoundError):
                    await store.get_collection("missing")
                # Not wait_for: the old close() swallowed its own cancellation as well.
                closing = asyncio.create_task(queue.close())
                done, _ = await asyncio.wait({closing}, timeout=60)
                if not done:
                    await tasks.stop(closing, *queue._tasks)
                assert done, "the queue was still closing after 60 s"
                await db.close()
        finally:
            await runtime.close()

    asyncio.run(scenario())
