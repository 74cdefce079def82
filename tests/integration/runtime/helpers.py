"""Helpers for runtime integration tests: settings, an API client, a cuttable TCP proxy."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from rag_runtime.app import create_app
from rag_runtime.settings import Settings


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"log_level": "warning", "cache_ttl_seconds": 300}
    base.update(overrides)
    base.setdefault("allow_anonymous", not base.get("api_keys"))
    return Settings(**base)


@contextlib.contextmanager
def api(**overrides: Any) -> Iterator[TestClient]:
    """The API in process (lifespan included) under the given settings."""
    app = create_app(settings(**overrides))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def wait_for_document(
    client: TestClient,
    collection: str,
    document_id: str,
    statuses: tuple[str, ...] = ("ready", "failed"),
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = client.get(
            f"/api/v1/collections/{collection}/documents/{document_id}", headers=headers
        )
        if resp.status_code == 200:
            body = resp.json()
            if body["status"] in statuses:
                return body
        time.sleep(0.1)
    raise AssertionError(f"document {document_id} never reached {statuses}: last {body}")


def add_documents(
    client: TestClient,
    collection: str,
    docs: list[dict[str, Any]],
    headers: dict[str, str] | None = None,
) -> list[str]:
    """Create the collection if needed, add documents, wait until all are ready."""
    client.post("/api/v1/collections", json={"name": collection}, headers=headers)
    ids = []
    for doc in docs:
        resp = client.post(f"/api/v1/collections/{collection}/documents", json=doc, headers=headers)
        assert resp.status_code in (200, 202), resp.text
        ids.append(resp.json()["id"])
    for doc_id in ids:
        assert wait_for_document(client, collection, doc_id, headers=headers)["status"] == "ready"
    return ids


class TcpProxy:
    """Forwards a local port to a target; `down()` cuts every connection and refuses new ones."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


class WorkerThread:
    """`rag-runtime worker` in a thread of this process (sharing the loaded model)."""

    def __init__(self, **overrides: Any) -> None:
        import asyncio

        self._asyncio = asyncio
        self.settings = settings(**overrides)
        self.loop: Any = None
        self.task: Any = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._started = threading.Event()

    def _run(self) -> None:
        from rag_runtime.worker import run_worker

        async def main() -> None:
            self.loop = self._asyncio.get_running_loop()
            self.task = self._asyncio.current_task()
            self._started.set()
            await run_worker(self.settings, handle_signals=False)

        with contextlib.suppress(BaseException):
            self._asyncio.run(main())

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        self._started.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.loop is not None and self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def served(**overrides: Any) -> Iterator[int]:
    """The API served by uvicorn on a free port in a thread (real HTTP); yields the port."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        create_app(settings(**overrides)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(60)
