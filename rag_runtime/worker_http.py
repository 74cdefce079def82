"""The worker's HTTP endpoint: `/health`, `/ready` and `/metrics` on RAG_METRICS_PORT.

A small asyncio server on the worker's own event loop, so that `/health` answering means the
loop that runs the jobs is alive (a stuck loop fails the liveness probe, which a TCP probe or
a metrics thread would not notice). `/ready` answers 200 only while every check passes (the
worker's: the queue, the database and its schema); otherwise 503 with the check that failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

HEALTH_PATH = "/health"
READY_PATH = "/ready"
METRICS_PATH = "/metrics"
REQUEST_TIMEOUT_S = 10.0
MAX_HEADER_LINES = 100
CHECK_TIMEOUT_S = 3.0

Check = Callable[[], Awaitable[object]]
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


async def run_checks(checks: dict[str, Check]) -> tuple[bool, dict[str, Any]]:
    """Run each check with a deadline; up when it returns, down with the reason otherwise."""
    results: dict[str, Any] = {}
    ok = True
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
            results[name] = {"status": "up"}
        except Exception as exc:  # any failure of a dependency means not ready
            ok = False
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            results[name] = {"status": "down", "reason": reason}
    return ok, results


class WorkerHttp:
    """Serves health, readiness and metrics of one worker process."""

    def __init__(self, registry: CollectorRegistry, checks: dict[str, Check]) -> None:
        self.registry = registry
        self.checks = checks
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._handle, host, port)
        log.info("worker health and metrics on %s:%d", host, port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def _respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "application/json", b'{"detail": "only GET"}'
        if path == HEALTH_PATH:
            return 200, "application/json", b'{"status": "ok"}'
        if path == READY_PATH:
            ok, results = await run_checks(self.checks)
            body = {"status": "ready" if ok else "not ready", "checks": results}
            return (200 if ok else 503), "application/json", json.dumps(body).encode()
        if path == METRICS_PATH:
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        return 404, "application/json", b'{"detail": "not found"}'

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                line = (await reader.readline()).decode("latin-1").split()
                for _ in range(MAX_HEADER_LINES):
                    if (await reader.readline()) in (b"\r\n", b"\n", b""):
                        break
            if len(line) != 3 or not line[2].startswith("HTTP/"):
                status, ctype, body = 400, "application/json", b'{"detail": "bad request"}'
                method = "GET"
            else:
                method = line[0]
                status, ctype, body = await self._respond(method, line[1].split("?", 1)[0])
            reason = _REASONS.get(status, "Service Unavailable")
            head = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
