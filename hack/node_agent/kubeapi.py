"""A small asyncio client of the Kubernetes API (aiohttp), with list+watch caches.

The node agent needs a handful of calls: get, list, watch, create, patch, delete, and caches
kept current by a watch (:class:`Reflector`). It authenticates with the cluster's client
certificate, like any other component of the local control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

log = logging.getLogger("node-agent.api")

Obj = dict[str, Any]
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


class ApiError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass(frozen=True)
class Credentials:
    server: str
    ca: Path
    cert: Path
    key: Path


class Api:
    """Calls against one API server; ``path`` arguments start with ``/api`` or ``/apis``."""

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds
        ctx = ssl.create_default_context(cafile=str(creds.ca))
        ctx.load_cert_chain(str(creds.cert), str(creds.key))
        self._ssl = ctx
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=32),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.creds.server}{path}{query}"

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        limit_s: float = 30,
    ) -> Obj:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        async with self.session.request(
            method,
            self._url(path, params),
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=limit_s),
        ) as resp:
            text = await resp.text()
            if resp.status >= 400:
                message = text
                with contextlib.suppress(ValueError, AttributeError):
                    message = json.loads(text).get("message", text)
                raise ApiError(resp.status, f"{method} {path}: {message}")
            out: Obj = json.loads(text) if text else {}
            return out

    async def get(self, path: str) -> Obj | None:
        try:
            return await self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def create(self, path: str, body: Obj) -> Obj:
        return await self.request("POST", path, body)

    async def patch(self, path: str, body: Obj, content_type: str = MERGE) -> Obj:
        return await self.request("PATCH", path, body, content_type=content_type)

    async def delete(self, path: str, body: Obj | None = None) -> Obj | None:
        try:
            return await self.request("DELETE", path, body)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def watch(
        self, path: str, params: Mapping[str, str], resource_version: str
    ) -> AsyncIterator[tuple[str, Obj]]:
        """Events of one watch request (ends when the server closes it)."""
        query = {
            **params,
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        async with self.session.get(
            self._url(path, query), timeout=aiohttp.ClientTimeout(total=None, sock_read=330)
        ) as resp:
            if resp.status >= 400:
                raise ApiError(resp.status, f"watch {path}: {await resp.text()}")
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                yield str(event.get("type", "")), event.get("object") or {}


def key_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


Handler = Callable[[str, Obj], Awaitable[None] | None]


class Reflector:
    """Keeps ``items`` equal to the listed objects of ``path`` and calls ``on_event`` on change.

    A watch that ends is resumed from the last resourceVersion; ``410 Gone`` relists. A path
    that is not served yet (a CRD not installed) is retried every few seconds.
    """

    def __init__(
        self,
        api: Api,
        path: str,
        on_event: Handler | None = None,
        params: Mapping[str, str] | None = None,
        name: str = "",
    ) -> None:
        self.api = api
        self.path = path
        self.params = dict(params or {})
        self.on_event = on_event
        self.items: dict[str, Obj] = {}
        self.synced = asyncio.Event()
        self.name = name or path

    async def _emit(self, kind: str, obj: Obj) -> None:
        if self.on_event is not None:
            result = self.on_event(kind, obj)
            if result is not None:
                await result

    async def _relist(self) -> str:
        listed = await self.api.request("GET", self.path, params=self.params or None)
        fresh = {key_of(o): o for o in listed.get("items") or []}
        for key in list(self.items):
            if key not in fresh:
                await self._emit("DELETED", self.items.pop(key))
        for key, obj in fresh.items():
            old = self.items.get(key)
            self.items[key] = obj
            if old is None or old.get("metadata", {}).get("resourceVersion") != obj.get(
                "metadata", {}
            ).get("resourceVersion"):
                await self._emit("ADDED" if old is None else "MODIFIED", obj)
        self.synced.set()
        return str(listed.get("metadata", {}).get("resourceVersion", ""))

    async def run(self) -> None:
        rv = ""
        while True:
            try:
                if not rv:
                    rv = await self._relist()
                async for kind, obj in self.api.watch(self.path, self.params, rv):
                    if kind == "BOOKMARK":
                        rv = obj.get("metadata", {}).get("resourceVersion", rv)
                        continue
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            rv = ""
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    key = key_of(obj)
                    if kind == "DELETED":
                        self.items.pop(key, None)
                    else:
                        self.items[key] = obj
                    await self._emit(kind, obj)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.status == 410:
                    rv = ""
                    continue
                if exc.status != 404:
                    log.warning("%s: %s", self.name, exc)
                rv = ""
                await asyncio.sleep(2)
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                log.warning("%s: watch interrupted: %s", self.name, exc)
                await asyncio.sleep(1)
            except Exception:
                log.exception("%s: handling an event failed; relisting", self.name)
                rv = ""
                await asyncio.sleep(1)
