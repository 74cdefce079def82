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
from rag_runtime.api.guard import AuthMiddleware, BodyLimitMiddleware, MethodGuard
from rag_runtime.api.responses import describe_anonymous_access
from rag_runtime.auth import KeyRing, parse_api_keys
from rag_runtime.errors import ConfigurationError, InvalidInputError, RagError, RateLimitedError
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


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RagError)
    async def runtime_error(request: Request, exc: RagError) -> JSONResponse:
        if exc.cause:
            log.warning("%s %s: %s", request.method, request.url.path, exc.log_text)
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(exc.retry_after)
        elif exc.status_code == 503:
            headers["Retry-After"] = "5"
        field = getattr(exc, "field", None)
        if isinstance(exc, InvalidInputError):  # one shape for every 422
            issue = {"loc": ["body", field] if field else ["body"], "msg": exc.message}
            body: dict[str, Any] = {
                "detail": [{**issue, "type": "value_error"}],
                "fields": [field or "body"],
                "message": exc.message,
            }
            return JSONResponse(body, status_code=422, headers=headers)
        body = {"detail": exc.message}
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
                    {
                        "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
                        "msg": str(e.get("msg", "invalid")),
                        "type": str(e.get("type", "value_error")),
                    }
                    for e in errors
                ],
                "fields": fields,
                "message": message,
            },
            status_code=422,
        )


def check_access_settings(settings: Settings) -> None:
    """Keys, or anonymous access asked for explicitly: never an open API by omission."""
    if settings.api_keys and settings.allow_anonymous:
        raise ConfigurationError(
            "RAG_ALLOW_ANONYMOUS=true and RAG_API_KEYS are both set: choose one"
        )
    if not settings.api_keys and not settings.allow_anonymous:
        raise ConfigurationError(
            "no RAG_API_KEYS: set API keys, or RAG_ALLOW_ANONYMOUS=true to serve without them"
        )


def _describe_access(app: FastAPI, settings: Settings) -> None:
    """The served OpenAPI says what the running API asks for: a bearer key, or nothing."""
    if not settings.allow_anonymous:
        return
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_anonymous_access(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the API. The lifespan opens the runtime's pools (or uses `runtime` if given).

    Raises ConfigurationError without API keys unless anonymous access is asked for.
    """
    check_access_settings(settings)

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
    keys = KeyRing(parse_api_keys(settings.api_keys))
    _install_error_handlers(app)
    _describe_access(app, settings)
    for router in (system.router, collections.router, documents.router, search.router):
        app.include_router(router)
    # JSON escapes add to the document itself; a multipart form adds a little.
    app.add_middleware(
        BodyLimitMiddleware,
        json_limit=settings.max_document_bytes * 2 + 65536,
        upload_limit=settings.max_document_bytes + 65536,
        max_uploads=settings.max_concurrent_uploads,
    )
    app.add_middleware(AuthMiddleware, keys=keys, anonymous=settings.allow_anonymous)
    app.add_middleware(MethodGuard)
    app.add_middleware(MetricsMiddleware)
    return app
