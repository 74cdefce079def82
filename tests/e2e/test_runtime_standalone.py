"""`rag-runtime serve` with no configuration at all, as a real process: it starts an embedded
Postgres with pgvector in a local data directory, ingests inline (no Redis), leaves graph
retrieval off (no Neo4j) and serves a working API that a real Prometheus scrapes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hack.services import PrometheusService

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    workdir = tmp_path_factory.mktemp("standalone")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["HF_HUB_OFFLINE"] = "1"
    env["RAG_ALLOW_ANONYMOUS"] = "true"
    log = (workdir / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag_runtime.cli", "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"rag-runtime serve did not start:\n{(workdir / 'serve.log').read_text()}")
        time.sleep(0.5)
    yield url, workdir
    proc.send_signal(signal.SIGTERM)
    try:
        # uvicorn re-raises the signal after a graceful shutdown
        assert proc.wait(60) in (0, -signal.SIGTERM)
    finally:
        proc.kill()
        log.close()
    # The embedded Postgres stopped with the server.
    assert not (workdir / ".rag-data" / "postgres" / "postmaster.pid").exists()


def test_ready_with_embedded_postgres_inline_queue_and_no_graph(
    server: tuple[str, Path],
) -> None:
    url, workdir = server
    body = httpx.get(f"{url}/api/v1/ready", timeout=30).json()
    assert body["status"] == "ready"
    checks = body["checks"]
    assert checks["database"]["status"] == "up"
    assert checks["queue"]["kind"] == "inline"
    assert checks["graph"]["status"] == "disabled"
    assert checks["cache"]["status"] == "disabled"
    assert (workdir / ".rag-data" / "postgres").is_dir()


def test_ingest_search_and_answer(server: tuple[str, Path]) -> None:
    url, _ = server
    with httpx.Client(base_url=url, timeout=60) as c:
        assert c.post("/api/v1/collections", json={"name": "kb"}).status_code == 201
        doc = c.post(
            "/api/v1/collections/kb/documents/upload",
            files={
                "file": (
                    "tides.md",
                    b"# Tides\n\nThe moon's gravity raises the ocean tides twice a day.",
                    "text/markdown",
                )
            },
        ).json()
        deadline = time.monotonic() + 120
        while c.get(f"/api/v1/collections/kb/documents/{doc['id']}").json()["status"] != "ready":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        hits = c.post("/api/v1/search", json={"collection": "kb", "query": "what causes tides"})
        assert hits.json()["results"][0]["document_id"] == doc["id"]
        graph = c.post(
            "/api/v1/search", json={"collection": "kb", "query": "moon", "strategy": "graph"}
        )
        assert graph.status_code == 409  # graph retrieval is off without Neo4j: a conflict, not 5xx
        with c.stream(
            "POST", "/api/v1/query", json={"collection": "kb", "query": "tides?", "stream": True}
        ) as resp:
            text = "".join(resp.iter_text())
    events = [block.split("\n")[0] for block in text.strip().split("\n\n")]
    assert events[0] == "event: results"
    assert events[-1] == "event: done"
    done = json.loads(text.strip().split("\n\n")[-1].split("data: ", 1)[1])
    assert done["citations"][0]["document_id"] == doc["id"]


def test_prometheus_scrapes_the_runtime(
    server: tuple[str, Path], prometheus: PrometheusService
) -> None:
    url, _ = server
    prometheus.set_targets([url.removeprefix("http://")])
    query = urllib.parse.quote('rag_runtime_http_requests_total{route="/api/v1/search"}')
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = httpx.get(f"{prometheus.url}/api/v1/query?query={query}", timeout=5).json()
        if data["data"]["result"]:
            break
        time.sleep(1)
    else:
        pytest.fail("Prometheus never scraped rag_runtime_http_requests_total")
    build = httpx.get(f"{prometheus.url}/api/v1/query?query=rag_runtime_build_info").json()
    assert build["data"]["result"][0]["metric"]["version"]
