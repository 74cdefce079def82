"""Helpers for the runtime benchmarks: services, an API server in a thread, SciFact (BEIR)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = REPO_ROOT / ".." / "shared" / "data" / "scifact"


@dataclass
class Beir:
    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(root: Path) -> Beir:
    corpus = {}
    with (root / "corpus.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            corpus[str(row["_id"])] = {"title": row.get("title", ""), "text": row["text"]}
    queries = {}
    with (root / "queries.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    with (root / "qrels" / "test.tsv").open() as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader)
        for qid, did, score in reader:
            qrels.setdefault(qid, {})[did] = int(score)
    queries = {q: t for q, t in queries.items() if q in qrels}
    return Beir(corpus, queries, qrels)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def services(
    *names: str, postgres_settings: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """Start Postgres (and Redis) from hack.services in a temporary directory."""
    from hack.paths import cache_dir
    from hack.services import start_postgres, start_redis

    started: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        try:
            if "postgres" in names:
                started["postgres"] = start_postgres(
                    Path(tmp) / "pg", cache_dir(), settings=postgres_settings
                )
            if "redis" in names:
                started["redis"] = start_redis(Path(tmp) / "redis")
            yield started
        finally:
            for svc in started.values():
                svc.stop()


@contextlib.contextmanager
def api_server(**settings: Any) -> Iterator[str]:
    """The runtime API served by uvicorn in a thread; yields its base URL."""
    import uvicorn

    from rag_runtime.app import create_app
    from rag_runtime.settings import Settings

    port = free_port()
    app = create_app(Settings(log_level="warning", allow_anonymous=True, **settings))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("API server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def _total(client: Any, collection: str, status: str) -> int:
    page = client.get(
        f"/api/v1/collections/{collection}/documents", params={"status": status, "limit": 1}
    )
    page.raise_for_status()
    return int(page.json()["total"])


def wait_settled(
    client: Any, collection: str, expected: int, timeout: float = 3600
) -> dict[str, str]:
    """Poll until `expected` documents are ready or failed; the failed ones' errors by id."""
    deadline = time.monotonic() + timeout
    while _total(client, collection, "ready") + _total(client, collection, "failed") < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{expected} documents were not ingested within {timeout:.0f} s")
        time.sleep(0.25)
    failed: dict[str, str] = {}
    while True:
        page = client.get(
            f"/api/v1/collections/{collection}/documents",
            params={"status": "failed", "limit": 500, "offset": len(failed)},
        ).json()
        failed.update({d["id"]: d["error"] or "" for d in page["items"]})
        if not page["items"] or len(failed) >= page["total"]:
            return failed


def doc_text(doc: dict[str, str]) -> str:
    return f"{doc['title']}\n\n{doc['text']}" if doc.get("title") else doc["text"]
