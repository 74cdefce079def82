"""`rag-runtime worker` as a real process on Redis (arq): a job whose worker is killed mid-job
is picked up by a restarted worker and finishes; nothing is lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hack.services import RedisService
from tests.integration.runtime.helpers import api, wait_for_document

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "rag_runtime.cli", "worker"]
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def test_a_job_survives_a_killed_worker(
    database_url: str, redis: RedisService, tmp_path: Path
) -> None:
    common = {"database_url": database_url, "redis_url": redis.url, "queue_name": "rag:kill"}
    env = {
        **os.environ,
        "RAG_DATABASE_URL": database_url,
        "RAG_REDIS_URL": redis.url,
        "RAG_QUEUE_NAME": "rag:kill",
        "RAG_JOB_TIMEOUT_SECONDS": "20",
        "RAG_WORKER_CONCURRENCY": "1",
        "HF_HUB_OFFLINE": "1",
    }
    log = tmp_path / "worker.log"
    text = " ".join(f"Finding {i}: the protein folds into shape number {i}." for i in range(500))
    with api(**common) as c:
        c.post("/api/v1/collections", json={"name": "jobs"})
        doc = c.post("/api/v1/collections/jobs/documents", json={"text": text}).json()
        first = start_worker(env, log)
        try:
            wait_for_document(c, "jobs", doc["id"], statuses=("processing",), timeout=120)
        finally:
            first.kill()
            first.wait()
        assert c.get(f"/api/v1/collections/jobs/documents/{doc['id']}").json()["status"] in (
            "processing",
            "queued",
        ), log.read_text()[-2000:]
        second = start_worker(env, log)
        try:
            done = wait_for_document(c, "jobs", doc["id"], timeout=180)
        finally:
            second.terminate()
            second.wait(30)
    assert done["status"] == "ready", log.read_text()[-2000:]
    assert done["attempts"] >= 2
    assert done["chunks"] > 10
    assert time.time()  # the first worker really died mid-job: see attempts
