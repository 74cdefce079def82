"""The only module that talks to the Kubernetes API.

An async client on aiohttp: server-side apply with one field manager, create-once, get,
list and delete for the kinds in `rag_operator.children.KINDS`. Each call checks that the
table declares its verb for the kind (so the chart's RBAC, which derives from the table,
allows it). Credentials come from the kubeconfig (or the in-cluster service account)
through the `kubernetes` package's loaders.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from rag_operator.children import KINDS, OPTIONAL, Capabilities, KindInfo, Scope


@dataclass(frozen=True)
class ResourceInfo:
    plural: str
    namespaced: bool = True


RESOURCES: dict[tuple[str, str], ResourceInfo] = {
    k.key: ResourceInfo(k.plural, namespaced=k.scope is Scope.NAMESPACED) for k in KINDS
}
_BY_KEY: dict[tuple[str, str], KindInfo] = {k.key: k for k in KINDS}


class UndeclaredAccessError(RuntimeError):
    """The operator tried a verb that `children.KINDS` does not declare for the kind."""


def check_declared(api_version: str, kind: str, verb: str, subresource: str = "") -> None:
    info = _BY_KEY.get((api_version, kind))
    if info is None:
        raise UndeclaredAccessError(f"{kind} ({api_version}) is not in rag_operator.children.KINDS")
    allowed = dict(info.subresources).get(subresource, frozenset()) if subresource else info.verbs
    if verb not in allowed:
        what = f"{info.plural}/{subresource}" if subresource else info.plural
        raise UndeclaredAccessError(
            f"{verb} on {what} is not declared in rag_operator.children.KINDS (nor in RBAC)"
        )


class KubeError(Exception):
    """An API call failed; `status` is the HTTP status (0 for connection errors)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def transient(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500


def resource_path(
    api_version: str, kind: str, namespace: str | None, name: str | None = None
) -> str:
    info = RESOURCES[(api_version, kind)]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if info.namespaced and namespace:
        base += f"/namespaces/{quote(namespace)}"
    base += f"/{info.plural}"
    if name:
        base += f"/{quote(name)}"
    return base


def object_path(manifest: dict[str, Any], subresource: str = "") -> str:
    """API path of the object a manifest names, optionally of one of its subresources."""
    meta = manifest["metadata"]
    path = resource_path(
        manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"]
    )
    return f"{path}/{subresource}" if subresource else path


def load_configuration(kubeconfig: str | None = None) -> k8s_client.Configuration:
    """Kubeconfig (KUBECONFIG or the given file) first, then the in-cluster account."""
    cfg = k8s_client.Configuration()
    try:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=cfg
        )
    except k8s_config.ConfigException:
        k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=cfg
        )
    return cfg


class Kube:
    """Async access to the API server for the operator's own kinds."""

    def __init__(
        self,
        configuration: k8s_client.Configuration,
        field_manager: str,
        timeout_s: float = 30.0,
        max_connections: int = 64,
    ) -> None:
        self._cfg = configuration
        self.field_manager = field_manager
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        # Watches are long-lived: a session of their own, outside the request slots.
        self._watch_session: aiohttp.ClientSession | None = None
        # Bounds requests in flight; the timeout starts once a request holds a slot, so a
        # burst of applies queues instead of timing out in the connection pool.
        self._slots: asyncio.Semaphore | None = None
        self._api_cache: dict[str, tuple[float, bool]] = {}
        self.writes = 0

    def _ssl(self) -> ssl.SSLContext | bool:
        cfg = self._cfg
        if not cfg.verify_ssl:
            return False
        ctx = (
            ssl.create_default_context(cafile=cfg.ssl_ca_cert)
            if cfg.ssl_ca_cert
            else (ssl.create_default_context())
        )
        if cfg.cert_file and cfg.key_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        return ctx

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl())
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        for session in (self._session, self._watch_session):
            if session is not None:
                await session.close()
        self._session = self._watch_session = None

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token = self._cfg.get_api_key_with_prefix(
            "authorization"
        ) or self._cfg.get_api_key_with_prefix("BearerToken")
        if token:
            headers["Authorization"] = token
        elif self._cfg.username and self._cfg.password:
            basic = self._cfg.get_basic_auth_token()
            if basic:
                headers["Authorization"] = basic
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        url = self._cfg.host.rstrip("/") + path
        if params:
            url += "?" + urlencode(params)
        data = json.dumps(body) if body is not None else None
        if data is not None and content_type is None:
            content_type = "application/json"
        session = await self._get_session()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        if method != "GET":
            self.writes += 1
        try:
            async with (
                self._slots,
                session.request(
                    method, url, data=data, headers=self._headers(content_type)
                ) as resp,
            ):
                text = await resp.text()
                if resp.status >= 400:
                    try:
                        status = json.loads(text)
                        raise KubeError(
                            resp.status, status.get("reason", ""), status.get("message", text)
                        )
                    except json.JSONDecodeError:
                        raise KubeError(resp.status, resp.reason or "", text) from None
                parsed: dict[str, Any] = json.loads(text) if text else {}
                return parsed
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise KubeError(0, type(exc).__name__, str(exc)) from exc

    async def apply(self, manifest: dict[str, Any], *, subresource: str = "") -> dict[str, Any]:
        """Server-side apply with the operator's field manager (conflicts forced)."""
        check_declared(manifest["apiVersion"], manifest["kind"], "patch", subresource)
        path = object_path(manifest, subresource)
        return await self.request(
            "PATCH",
            path,
            body=manifest,
            params={"fieldManager": self.field_manager, "force": "true"},
            content_type="application/apply-patch+yaml",
        )

    async def replace(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """PUT the whole object; its metadata.resourceVersion makes the write conditional
        (a 409 KubeError when someone else wrote it first)."""
        check_declared(manifest["apiVersion"], manifest["kind"], "update")
        return await self.request(
            "PUT", object_path(manifest), body=manifest, params={"fieldManager": self.field_manager}
        )

    async def merge_patch(
        self, manifest: dict[str, Any], patch: dict[str, Any], *, subresource: str = ""
    ) -> dict[str, Any]:
        """JSON merge patch of the object `manifest` names (fields not in `patch` stay)."""
        check_declared(manifest["apiVersion"], manifest["kind"], "patch", subresource)
        path = object_path(manifest, subresource)
        return await self.request(
            "PATCH",
            path,
            body=patch,
            params={"fieldManager": self.field_manager},
            content_type="application/merge-patch+json",
        )

    async def create(self, manifest: dict[str, Any]) -> bool:
        """Create the object unless it exists; True when this call created it."""
        meta = manifest["metadata"]
        check_declared(manifest["apiVersion"], manifest["kind"], "create")
        path = resource_path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"))
        try:
            await self.request(
                "POST", path, body=manifest, params={"fieldManager": self.field_manager}
            )
        except KubeError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        check_declared(api_version, kind, "get")
        try:
            return await self.request("GET", resource_path(api_version, kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        check_declared(api_version, kind, "list")
        params = {"labelSelector": label_selector} if label_selector else None
        result = await self.request(
            "GET", resource_path(api_version, kind, namespace), params=params
        )
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    async def list_page(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        *,
        label_selector: str,
        limit: int,
        cont: str = "",
    ) -> dict[str, Any]:
        """One page of a list (the whole List object: items, metadata.continue and
        metadata.resourceVersion), filtered by the API server with `label_selector`."""
        check_declared(api_version, kind, "list")
        params = {"labelSelector": label_selector, "limit": str(limit)}
        if cont:
            params["continue"] = cont
        return await self.request("GET", resource_path(api_version, kind, namespace), params=params)

    async def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        *,
        label_selector: str,
        resource_version: str,
        timeout_s: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch request from `resource_version` (bookmarks included),
        until the API server ends it after `timeout_s`. An ERROR event raises KubeError with
        its code (410 when the version is too old: list again)."""
        check_declared(api_version, kind, "watch")
        params = {
            "watch": "1",
            "labelSelector": label_selector,
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        url = self._cfg.host.rstrip("/") + resource_path(api_version, kind, namespace)
        url += "?" + urlencode(params)
        if self._watch_session is None or self._watch_session.closed:
            connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl())
            self._watch_session = aiohttp.ClientSession(connector=connector)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout_s + 30)
        try:
            async with self._watch_session.get(
                url, headers=self._headers(None), timeout=timeout
            ) as resp:
                if resp.status >= 400:
                    raise KubeError(resp.status, resp.reason or "", await resp.text())
                async for event in _lines(resp.content):
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        code = int(status.get("code") or 500)
                        raise KubeError(code, status.get("reason", ""), status.get("message", ""))
                    yield event
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise KubeError(0, type(exc).__name__, str(exc)) from exc

    async def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        propagation: str = "Background",
    ) -> bool:
        """Delete one object; False when it was already gone."""
        check_declared(api_version, kind, "delete")
        try:
            await self.request(
                "DELETE",
                resource_path(api_version, kind, namespace, name),
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": propagation,
                },
            )
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def has_api(self, group_version: str, resource: str, ttl_s: float = 60.0) -> bool:
        """Whether the cluster serves `resource` in `group_version` (cached for ttl_s)."""
        key = f"{group_version}/{resource}"
        cached = self._api_cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < ttl_s:
            return cached[1]
        try:
            found = await self.request("GET", f"/apis/{group_version}")
            present = any(r.get("name") == resource for r in found.get("resources", []))
        except KubeError as exc:
            if exc.status not in (404, 503):
                raise
            present = False
        self._api_cache[key] = (now, present)
        return present

    async def discover(self) -> Capabilities:
        """Which optional kinds (`children.OPTIONAL`) the cluster serves right now."""
        served = [k.kind for k in OPTIONAL if await self.has_api(k.api_version, k.plural, ttl_s=0)]
        return Capabilities.of(served)


async def _lines(stream: aiohttp.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """JSON objects of a newline-delimited stream (objects of any size)."""
    buffer = b""
    async for chunk in stream.iter_any():
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
