"""The FastAPI application factory: `create_app(settings)`."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag_runtime.api import collections, documents, search, system
from rag_runtime.api.deps import parse_api_keys
from rag_runtime.errors import RagError, RateLimitedError
from rag_runtime.metrics import package_version
from rag_runtime.runtime import Runtime
from rag_runtime.settings import Settings

log = logging.getLogger(__name__)


PROBE_HEADER = b"x-ragops-probe"


def request_source(scope: Scope) -> str:
    """probe for the operator's canary probes (header X-Ragops-Probe), else client."""
    headers = scope.get("headers") or []
    return "probe" if any(k.lower() == PROBE_HEADER for k, _ in headers) else "client"


class MetricsMiddleware:
    """Counts and times every HTTP request by route template, method, status and source."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
            if runtime is not None:
                labels = (template, scope["method"], str(status), request_source(scope))
                runtime.metrics.requests.labels(*labels).inc()
                runtime.metrics.request_seconds.labels(*labels).observe(time.perf_counter() - start)


class BodyLimitMiddleware:
    """Rejects a request whose declared body is far above the document limit (413)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            length = headers.get(b"content-length")
            if length and length.isdigit() and int(length) > self.limit:
                response = JSONResponse(
                    {"detail": f"request body exceeds {self.limit} bytes"}, status_code=413
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RagError)
    async def runtime_error(_: Request, exc: RagError) -> JSONResponse:
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(exc.retry_after)
        elif exc.status_code == 503:
            headers["Retry-After"] = "5"
        body: dict[str, Any] = {"detail": exc.message}
        field = getattr(exc, "field", None)
        if field:
            body["field"] = field
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        fields = [_field_name(tuple(e.get("loc", ()))) for e in errors]
        message = "; ".join(
            f"{f}: {e.get('msg', 'invalid')}" for f, e in zip(fields, errors, strict=True)
        )
        return JSONResponse(
            {
                "detail": [
                    {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                    for e in errors
                ],
                "fields": fields,
                "message": message,
            },
            status_code=422,
        )


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the API. The lifespan opens the runtime's pools (or uses `runtime` if given)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        rt = runtime or await Runtime.start(settings, role="api")
        app.state.runtime = rt
        try:
            yield
        finally:
            if owned:
                await rt.close()

    app = FastAPI(
        title="ragops RAG runtime",
        version=package_version(),
        lifespan=lifespan,
        description="Collections, documents, retrieval and answers over Postgres + pgvector.",
    )
    app.state.settings = settings
    app.state.api_keys = parse_api_keys(settings.api_keys)
    _install_error_handlers(app)
    for router in (system.router, collections.router, documents.router, search.router):
        app.include_router(router)
    # Multipart and JSON encodings add overhead on top of the document itself.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_document_bytes * 2 + 65536)
    app.add_middleware(MetricsMiddleware)
    return app
