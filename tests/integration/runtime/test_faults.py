"""Faults the runtime survives, with real processes.

- Postgres crashes (immediate shutdown, as an OOM kill or a node loss does: no checkpoint,
  crash recovery on the next start) while the worker ingests, and comes back on the same
  data: every document becomes ready exactly once, none is lost, failed or stuck.
- Neo4j is unreachable: graph searches answer 503 with the reason and Retry-After; vector,
  keyword and hybrid searches, answers and ingestion go on as before; once Neo4j is back,
  graph searches answer again.

(Redis down is in test_service.py: its features switch off, queries still answer.)
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from hack.paths import cache_dir
from hack.services import Neo4jService, PostgresService, RedisService, start_postgres
from tests.integration.runtime.helpers import (
    TcpProxy,
    WorkerThread,
    add_documents,
    api,
    wait_for_document,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCUMENTS = 16


@pytest.fixture
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresService]:
    """A Postgres of this test's own: it is crashed and restarted. With commits durable
    (the shared test Postgres acknowledges them before their WAL is written, so a crash
    would lose what the API already accepted: not the runtime's fault)."""
    service = start_postgres(
        tmp_path_factory.mktemp("pg-crash"), cache_dir(), settings={"synchronous_commit": "on"}
    )
    try:
        yield service
    finally:
        service.stop()


def _crash_and_restart(service: PostgresService, down_s: float) -> None:
    popen = service.process.popen
    assert popen is not None
    os.kill(popen.pid, signal.SIGQUIT)  # immediate shutdown: every backend quits at once
    popen.wait(30)
    time.sleep(down_s)
    service.process.start()  # same data directory, same port: crash recovery runs

    def accepting() -> bool:
        with psycopg.connect(service.url, connect_timeout=2) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)

    service.process.wait_ready(accepting, timeout=60)


def _statuses(service: PostgresService, database: str) -> dict[str, int]:
    with psycopg.connect(service.url_for(database)) as conn:
        rows = conn.execute("SELECT status, count(*) FROM documents GROUP BY status").fetchall()
    return {str(status): int(n) for status, n in rows}


def test_postgres_crash_during_ingestion_loses_no_document(
    own_postgres: PostgresService, redis: RedisService, tmp_path: Path
) -> None:
    url = own_postgres.create_database("crash")
    common = {"database_url": url, "redis_url": redis.url, "queue_name": "rag:crash"}
    texts = [
        " ".join(f"Record {i}.{j}: sample {i} was measured at {j} degrees." for j in range(60))
        for i in range(DOCUMENTS)
    ]
    with api(**common) as c:
        assert c.post("/api/v1/collections", json={"name": "crash"}).status_code == 201
        ids = []
        for text in texts:
            resp = c.post("/api/v1/collections/crash/documents", json={"text": text})
            assert resp.status_code == 202, resp.text
            ids.append(resp.json()["id"])
        with WorkerThread(**common):
            wait_for_document(c, "crash", ids[0], statuses=("processing", "ready"), timeout=120)
            _crash_and_restart(own_postgres, down_s=2)
            done = [wait_for_document(c, "crash", i, timeout=240) for i in ids]
    assert [d["status"] for d in done] == ["ready"] * DOCUMENTS, [
        (d["status"], d.get("error")) for d in done
    ]
    assert all(d["chunks"] > 0 for d in done)
    assert _statuses(own_postgres, "crash") == {"ready": DOCUMENTS}
    with psycopg.connect(own_postgres.url_for("crash")) as conn:
        per_document = conn.execute(
            "SELECT document_id, count(*), count(DISTINCT ordinal) FROM chunks GROUP BY 1"
        ).fetchall()
    assert len(per_document) == DOCUMENTS
    assert all(n == distinct for _, n, distinct in per_document)  # no chunk written twice


GENES = [
    {"title": "brca", "text": "Mutations in BRCA1 raise the risk of breast cancer."},
    {"title": "rad51", "text": "RAD51 forms filaments on single-stranded DNA during repair."},
]


def _search(c: TestClient, strategy: str, query: str = "BRCA1 breast cancer") -> Any:
    return c.post(
        "/api/v1/search", json={"collection": "genes", "query": query, "strategy": strategy}
    )


def test_neo4j_down_fails_graph_searches_clearly_and_nothing_else(
    database_url: str, neo4j: Neo4jService
) -> None:
    proxy = TcpProxy("127.0.0.1", neo4j.port)
    try:
        with api(
            database_url=database_url,
            neo4j_uri=f"bolt://127.0.0.1:{proxy.port}",
            neo4j_user=neo4j.user,
            neo4j_password=neo4j.password,
            neo4j_retry_seconds=2,
        ) as c:
            add_documents(c, "genes", GENES)
            assert _search(c, "graph").status_code == 200
            proxy.down()
            graph = _search(c, "graph", "RAD51 filaments")
            assert graph.status_code == 503, graph.text
            assert graph.json()["detail"] == "graph store unavailable"
            assert graph.headers["Retry-After"]
            for strategy in ("vector", "keyword", "hybrid"):
                resp = _search(c, strategy)
                assert resp.status_code == 200, (strategy, resp.text)
                assert resp.json()["results"][0]["document_title"] == "brca"
            answer = c.post("/api/v1/query", json={"collection": "genes", "query": "BRCA1?"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["citations"]
            ready = c.get("/api/v1/ready").json()
            assert ready["checks"]["graph"]["status"] == "down"
            assert ready["checks"]["database"]["status"] == "up"
            added = add_documents(
                c, "genes", [{"title": "tp53", "text": "TP53 guards the genome."}]
            )
            hits = _search(c, "vector", "TP53 genome guardian").json()["results"]
            assert hits[0]["document_id"] == added[0]
            proxy.up()
            deadline = time.monotonic() + 60
            while _search(c, "graph", "RAD51 filaments").status_code != 200:
                assert time.monotonic() < deadline, "graph search never answered again"
                time.sleep(0.5)
            back = _search(c, "graph", "RAD51 filaments").json()["results"]
            assert back
            assert back[0]["document_title"] == "rad51"
    finally:
        proxy.down()
