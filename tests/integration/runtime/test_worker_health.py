"""`rag-runtime worker` serves /health, /ready and /metrics on RAG_METRICS_PORT.

Aspects covered, against a real worker process on real Postgres and Redis: /health answers
once the worker runs; on a database without the schema yet (a first install, the migration
Job still to run) /ready is 503 naming the schema and the worker keeps running; once
`rag-runtime migrate` ran it is 200 with the queue, the database and the schema up; /metrics has the
runtime's series; an unknown path is 404; with its Redis stopped the worker is alive but not
ready (503 naming the queue), and ready again once Redis is back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hack.services import RedisService, start_redis
from tests.integration.runtime.helpers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisService]:
    redis = start_redis(tmp_path / "redis")
    yield redis
    redis.stop()


def test_worker_health_readiness_and_metrics(
    database_url: str, own_redis: RedisService, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "RAG_DATABASE_URL": database_url,
        "RAG_REDIS_URL": own_redis.url,
        "RAG_QUEUE_NAME": "rag:health",
        "RAG_METRICS_PORT": str(port),
        "RAG_HOST": "127.0.0.1",
        "HF_HUB_OFFLINE": "1",
    }
    log = tmp_path / "worker.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag_runtime.cli", "worker"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(
            lambda: (
                proc.poll() is None and httpx.get(f"{base}/health", timeout=5).status_code == 200
            ),
            300,
            "the worker's /health",
        )
        assert proc.poll() is None, log.read_text()[-3000:]
        assert httpx.get(f"{base}/health", timeout=5).json() == {"status": "ok"}

        # A first install: the worker starts before the migration Job made the schema.
        unmigrated = httpx.get(f"{base}/ready", timeout=10)
        assert unmigrated.status_code == 503, unmigrated.text
        schema = unmigrated.json()["checks"]["schema"]
        assert schema["status"] == "down"
        assert "behind" in schema["reason"], schema
        migrate = subprocess.run(
            [sys.executable, "-m", "rag_runtime.cli", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        ready = httpx.get(f"{base}/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "ready"
        up = {"status": "up"}
        assert body["checks"] == {"queue": up, "database": up, "schema": up}
        assert proc.poll() is None, log.read_text()[-3000:]
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]

        metrics = httpx.get(f"{base}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "rag_runtime_build_info{" in metrics.text
        assert "rag_runtime_ingestion_queue_depth" in metrics.text

        assert httpx.get(f"{base}/nowhere", timeout=5).status_code == 404
        assert httpx.post(f"{base}/ready", timeout=5).status_code == 405

        own_redis.process.stop()
        _wait(
            lambda: httpx.get(f"{base}/ready", timeout=10).status_code == 503,
            60,
            "/ready to fail without Redis",
        )
        down = httpx.get(f"{base}/ready", timeout=10).json()
        assert down["status"] == "not ready"
        assert down["checks"]["queue"]["status"] == "down"
        assert down["checks"]["database"] == {"status": "up"}
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200
        assert proc.poll() is None, log.read_text()[-3000:]

        back = start_redis(tmp_path / "redis-again", port=own_redis.port)
        try:
            _wait(
                lambda: httpx.get(f"{base}/ready", timeout=10).status_code == 200,
                120,
                "/ready once Redis is back",
            )
        finally:
            proc.terminate()
            proc.wait(60)
            back.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 0, log.read_text()[-3000:]
