"""`rag-runtime worker` on Redis (arq): a job whose worker is killed mid-job is picked up by a
restarted worker and finishes; nothing is lost. Many documents at once, more than the worker's
concurrency and of mixed sizes, all become ready, each processed once (the worker skips its
own running jobs without asking Redis, and embeds them in shared batches).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hack.services import RedisService
from tests.integration.runtime.helpers import WorkerThread, api, wait_for_document

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


def test_many_documents_at_once_are_each_ingested_once(
    database_url: str, redis: RedisService
) -> None:
    common = {
        "database_url": database_url,
        "redis_url": redis.url,
        "queue_name": "rag:many",
        "worker_concurrency": 4,
        "embedding_batch_size": 8,
    }
    docs = [
        " ".join(f"Sample {i} shows finding {j} about enzyme {i}." for j in range(1 + i * 9 % 60))
        for i in range(16)
    ]
    with api(**common) as c, WorkerThread(**common):
        c.post("/api/v1/collections", json={"name": "many"})
        ids = [
            c.post("/api/v1/collections/many/documents", json={"text": t}).json()["id"]
            for t in docs
        ]
        done = [wait_for_document(c, "many", doc_id, timeout=180) for doc_id in ids]
    assert [d["status"] for d in done] == ["ready"] * len(docs)
    assert [d["attempts"] for d in done] == [1] * len(docs)
    assert sum(d["chunks"] for d in done) > len(docs)
