"""What runs before a route reads a byte of the body: authentication and body limits.

`AuthMiddleware` decides who the caller is from the headers alone (401/429 before the body
is read); `BodyLimitMiddleware` counts the body as it streams, chunked or not, and cuts it
with 413 the moment it passes the limit, so an upload is never spooled beyond it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag_runtime.auth import KeyRing, Principal

log = logging.getLogger(__name__)

# Paths anyone may call: probes, metrics and the API description.
PUBLIC_PATHS = frozenset(
    {
        "/api/v1/health",
        "/api/v1/ready",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
    }
)
BEARER = {"WWW-Authenticate": "Bearer"}
HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class AuthMiddleware:
    """Bearer keys (or anonymous, when configured), failed-attempt and per-key rate limits."""

    def __init__(self, app: ASGIApp, keys: KeyRing, *, anonymous: bool) -> None:
        self.app = app
        self.keys = keys
        self.anonymous = anonymous

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        outcome = await self._principal(scope)
        if isinstance(outcome, JSONResponse):
            await outcome(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = outcome
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope) -> Principal | JSONResponse:
        runtime: Any = scope["app"].state.runtime
        client = scope["client"][0] if scope.get("client") else "unknown"
        if self.anonymous:
            principal = Principal(key_id=f"anonymous:{client}", collections=None)
        else:
            wait = await runtime.auth_failures.blocked(client)
            if wait is not None:
                return _error(
                    429,
                    "too many failed authentication attempts from this address",
                    {"Retry-After": str(wait)},
                )
            scheme, _, token = (_header(scope, b"authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return _error(401, "missing API key: send 'Authorization: Bearer <key>'", BEARER)
            found = self.keys.identify(token.strip())
            if found is None:
                await runtime.auth_failures.hit(client)
                log.warning("unknown API key from %s", client)
                return _error(401, "unknown API key", BEARER)
            principal = found
        wait = await runtime.limiter.hit(principal.key_id)
        if wait is not None:
            return _error(429, "rate limit exceeded for this API key", {"Retry-After": str(wait)})
        return principal


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


class BodyLimitMiddleware:
    """Bounds request bodies while they stream; bounds the uploads spooled at once."""

    def __init__(
        self, app: ASGIApp, *, json_limit: int, upload_limit: int, max_uploads: int
    ) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.max_uploads = max_uploads
        self.uploads = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type = (_header(scope, b"content-type") or "").lower()
        upload = content_type.startswith("multipart/")
        limit = self.upload_limit if upload else self.json_limit
        length = _header(scope, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            await _error(413, f"request body exceeds {limit} bytes")(scope, receive, send)
            return
        if upload and self.uploads >= self.max_uploads:
            response = _error(503, "too many uploads in progress", {"Retry-After": "5"})
            await response(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        if upload:
            self.uploads += 1
        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:
            if started:
                raise
            await _error(413, str(exc.detail))(scope, receive, send)
        finally:
            if upload:
                self.uploads -= 1


class MethodGuard:
    """405 with an `Allow` header listing every method of the path (all of its routes), and
    a literal path (`.../documents/retry`) never taken for a parameter of another route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._paths: list[tuple[Any, int, frozenset[str]]] | None = None

    def _table(self, scope: Scope) -> list[tuple[Any, int, frozenset[str]]]:
        """Each documented path with its methods, from the app's own OpenAPI."""
        if self._paths is None:
            table = []
            for path, operations in scope["app"].openapi().get("paths", {}).items():
                methods = {m.upper() for m in operations if m.upper() in HTTP_METHODS}
                if "GET" in methods:
                    methods.add("HEAD")
                table.append((compile_path(path)[0], path.count("{"), frozenset(methods)))
            # Most literal first: fewer parameters win, as a reader of the OpenAPI expects.
            self._paths = sorted(table, key=lambda entry: entry[1])
        return self._paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for regex, _, allowed in self._table(scope):
                if regex.match(scope["path"]):
                    if scope["method"] not in allowed:
                        allow = ", ".join(sorted(allowed))
                        response = _error(405, "Method Not Allowed", {"Allow": allow})
                        await response(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)
