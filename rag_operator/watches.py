"""Watch caches of the operator's own objects: only what carries its managed-by label.

One `WatchCache` per cached kind of `children.KINDS` (and per namespace when the operator is
given literal namespaces): a paginated list, then watches from the list's resourceVersion,
both filtered by the API server with `labelSelector=app.kubernetes.io/managed-by=
ragops-operator`, so the process never receives the cluster's other Secrets, Pods or
ConfigMaps. Bookmarks keep the resourceVersion fresh; a 410 (version too old) lists again;
other errors back off exponentially (0.5 s to 30 s, jittered) and retry.

Each cache holds a small value per object (children: trimmed, JSON-packed; pods: their
readiness; Secrets: key names only), indexed by (namespace, instance) or (namespace, name),
and calls `on_change(namespace, instance)` for every change: that wakes the system's
reconcile loop. `Caches` starts the core kinds at once and each optional kind (HTTPRoute,
ServiceMonitor, PrometheusRule) on its own when discovery finds its CRD served; a kind counts
as served for reconciles only once its cache has synced (so a pass never mistakes an
unsynced cache for missing children).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rag_operator import metrics
from rag_operator.children import CACHED, KindInfo, index_id
from rag_operator.kube import Kube, KubeError
from rag_operator.models.naming import INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from rag_operator.observed import pod_info, trim

log = logging.getLogger(__name__)

SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
PAGE_SIZE = 500
WATCH_TIMEOUT_S = 300
IndexKey = tuple[str, str]
OnChange = Callable[[str, str | None], None]


def _pack(obj: Mapping[str, Any]) -> str:
    return json.dumps(trim(obj), separators=(",", ":"))


def _by_instance(obj: Mapping[str, Any]) -> IndexKey | None:
    meta = obj.get("metadata") or {}
    instance = (meta.get("labels") or {}).get(INSTANCE_LABEL)
    return (meta.get("namespace") or "", instance) if instance else None


def _by_name(obj: Mapping[str, Any]) -> IndexKey | None:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def _secret_keys(obj: Mapping[str, Any]) -> frozenset[str]:
    # Only the key names: the operator never keeps or logs the values.
    return frozenset((obj.get("data") or {}).keys())


@dataclass(frozen=True)
class Shape:
    """What a cache keeps of one object, and under which key."""

    key: Callable[[Mapping[str, Any]], IndexKey | None]
    value: Callable[[Mapping[str, Any]], Any]


def shape_of(info: KindInfo) -> Shape:
    if info.kind == "Pod":
        return Shape(_by_instance, pod_info)
    if info.kind == "Secret":
        return Shape(_by_name, _secret_keys)
    return Shape(_by_instance, _pack)


class Backoff:
    """Exponential backoff with jitter: 0.5 s doubling to 30 s."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first, self.cap, self.failures = first, cap, 0

    def next(self) -> float:
        self.failures += 1
        delay = min(self.cap, self.first * 2 ** (self.failures - 1))
        return float(delay * random.uniform(0.8, 1.2))

    def reset(self) -> None:
        self.failures = 0


class Store:
    """Objects by (namespace, name) and their values by index key (pure, no I/O).

    Changes report the systems they touch: (namespace, instance) from the instance label,
    whatever the kind's index key (Secrets are indexed by name)."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        # (namespace, name) -> (index key, value, (namespace, instance) or None)
        self.objects: dict[IndexKey, tuple[IndexKey | None, Any, IndexKey | None]] = {}
        self.index: dict[IndexKey, dict[str, Any]] = {}

    def put(self, obj: Mapping[str, Any]) -> list[IndexKey]:
        """Add or replace one object; the systems whose cached objects changed."""
        meta = obj.get("metadata") or {}
        ident = (meta.get("namespace") or "", meta.get("name") or "")
        entry = (self.shape.key(obj), self.shape.value(obj), _by_instance(obj))
        if self.objects.get(ident) == entry:
            return []
        touched = self.remove(ident)
        self.objects[ident] = entry
        if entry[0] is not None:
            self.index.setdefault(entry[0], {})[ident[1]] = entry[1]
        if entry[2] is not None:
            touched.append(entry[2])
        return list(dict.fromkeys(touched))

    def remove(self, ident: IndexKey) -> list[IndexKey]:
        old = self.objects.pop(ident, None)
        if old is None:
            return []
        if old[0] is not None:
            values = self.index.get(old[0], {})
            values.pop(ident[1], None)
            if not values:
                self.index.pop(old[0], None)
        return [old[2]] if old[2] is not None else []

    def replace(self, objs: Iterable[Mapping[str, Any]]) -> set[IndexKey]:
        """Hold exactly `objs` (a fresh list); the systems whose cached objects changed."""
        fresh = Store(self.shape)
        for obj in objs:
            fresh.put(obj)
        changed: set[IndexKey] = set()
        for ident in set(self.objects) | set(fresh.objects):
            old, new = self.objects.get(ident), fresh.objects.get(ident)
            if old != new:
                changed |= {e[2] for e in (old, new) if e is not None and e[2] is not None}
        self.objects, self.index = fresh.objects, fresh.index
        return changed

    def apply(self, event: Mapping[str, Any]) -> list[IndexKey]:
        """One watch event (ADDED, MODIFIED, DELETED; BOOKMARK changes nothing)."""
        obj = event.get("object") or {}
        if event.get("type") == "DELETED":
            meta = obj.get("metadata") or {}
            return self.remove((meta.get("namespace") or "", meta.get("name") or ""))
        if event.get("type") in ("ADDED", "MODIFIED"):
            return self.put(obj)
        return []


class WatchCache:
    """List+watch of one kind (in one namespace, or all), label-selected by the API server."""

    def __init__(
        self,
        kube: Kube,
        info: KindInfo,
        namespace: str | None,
        on_change: OnChange,
        accept: Callable[[str], bool] = lambda _ns: True,
    ) -> None:
        self.kube, self.info, self.namespace = kube, info, namespace
        self.on_change, self.accept = on_change, accept
        self.store = Store(shape_of(info))
        self.resource_version = ""
        self.synced = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"watch {self.info.plural}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    def _changed(self, keys: Iterable[IndexKey]) -> None:
        for namespace, instance in keys:
            self.on_change(namespace, instance)
        metrics.WATCH_OBJECTS.labels(self.info.kind).set(len(self.store.objects))

    def _wanted(self, obj: Mapping[str, Any]) -> bool:
        return self.accept((obj.get("metadata") or {}).get("namespace") or "")

    async def relist(self) -> None:
        """Every object of the kind, page by page, as one consistent snapshot."""
        items: list[dict[str, Any]] = []
        cont = ""
        while True:
            page = await self.kube.list_page(
                self.info.api_version,
                self.info.kind,
                self.namespace,
                label_selector=SELECTOR,
                limit=PAGE_SIZE,
                cont=cont,
            )
            for item in page.get("items") or []:
                item.setdefault("apiVersion", self.info.api_version)
                item.setdefault("kind", self.info.kind)
                if self._wanted(item):
                    items.append(item)
            meta = page.get("metadata") or {}
            cont = meta.get("continue") or ""
            if not cont:
                self.resource_version = str(meta.get("resourceVersion") or "")
                break
        metrics.WATCH_LISTS.labels(self.info.kind).inc()
        self._changed(self.store.replace(items))
        self.synced.set()

    async def watch_once(self) -> bool:
        """One watch request; True when it delivered at least one event."""
        delivered = False
        async for event in self.kube.watch(
            self.info.api_version,
            self.info.kind,
            self.namespace,
            label_selector=SELECTOR,
            resource_version=self.resource_version,
            timeout_s=WATCH_TIMEOUT_S,
        ):
            delivered = True
            obj = event.get("object") or {}
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if version:
                self.resource_version = str(version)
            if event.get("type") != "BOOKMARK" and self._wanted(obj):
                self._changed(self.store.apply(event))
        return delivered

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                if not self.resource_version:
                    await self.relist()
                if await self.watch_once():
                    backoff.reset()
            except KubeError as exc:
                if exc.status == 410:
                    log.info("watch of %s expired, listing again", self.info.plural)
                    self.resource_version = ""
                    continue
                delay = backoff.next()
                metrics.WATCH_ERRORS.labels(self.info.kind).inc()
                log.warning("watch of %s failed, again in %.1fs: %s", self.info.plural, delay, exc)
                await asyncio.sleep(delay)


class IndexView(Mapping[IndexKey, list[Any]]):
    """The values of one kind by index key, across the kind's caches (read-only)."""

    def __init__(self, caches: list[WatchCache]) -> None:
        self._caches = caches

    def __getitem__(self, key: IndexKey) -> list[Any]:
        found = [v for c in self._caches for v in c.store.index.get(key, {}).values()]
        if not found and not any(key in c.store.index for c in self._caches):
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return any(key in c.store.index for c in self._caches)

    def __iter__(self) -> Iterator[IndexKey]:
        return iter({k for c in self._caches for k in c.store.index})

    def __len__(self) -> int:
        return len(set(self))

    def __bool__(self) -> bool:
        # Without this, truth (`indices.get(kind) or {}` in every pass) would fall back to
        # __len__, a set of every system's key: a cost that grows with the cluster.
        return any(c.store.index for c in self._caches)


def namespace_plan(patterns: tuple[str, ...]) -> tuple[list[str | None], Callable[[str], bool]]:
    """Where to list: one request per literal namespace; all namespaces (filtered here by
    the glob patterns) when any pattern is a glob or none is given."""
    if patterns and not any(set(p) & set("*?[") for p in patterns):
        return list(patterns), lambda _ns: True
    if not patterns:
        return [None], lambda _ns: True
    return [None], lambda ns: any(fnmatch.fnmatchcase(ns, p) for p in patterns)


class Caches:
    """The watch caches of every cached kind; optional kinds follow discovery, each alone."""

    def __init__(self, kube: Kube, namespaces: tuple[str, ...], on_change: OnChange) -> None:
        self.kube, self.on_change = kube, on_change
        self.where, self.accept = namespace_plan(namespaces)
        self.by_kind: dict[str, list[WatchCache]] = {}

    def _start(self, info: KindInfo) -> None:
        caches = [WatchCache(self.kube, info, ns, self.on_change, self.accept) for ns in self.where]
        for cache in caches:
            cache.start()
        self.by_kind[info.kind] = caches

    def start_core(self) -> None:
        for info in CACHED:
            if not info.optional_crd:
                self._start(info)

    def synced(self, kind: str) -> bool:
        caches = self.by_kind.get(kind) or []
        return bool(caches) and all(c.synced.is_set() for c in caches)

    async def wait_core(self) -> None:
        for info in CACHED:
            if not info.optional_crd:
                for cache in self.by_kind[info.kind]:
                    await cache.synced.wait()

    async def follow(self, served: frozenset[str], wait_s: float = 30.0) -> frozenset[str]:
        """Start the caches of optional kinds now served and stop those no longer served;
        the served kinds whose caches have synced (waiting up to wait_s for new ones)."""
        optional = [i for i in CACHED if i.optional_crd]
        for info in optional:
            if info.kind in served and info.kind not in self.by_kind:
                self._start(info)
            elif info.kind not in served and info.kind in self.by_kind:
                for cache in self.by_kind.pop(info.kind):
                    await cache.stop()
                metrics.WATCH_OBJECTS.labels(info.kind).set(0)
        waits = [c.synced.wait() for k in served if k in self.by_kind for c in self.by_kind[k]]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), wait_s)
        return frozenset(i.kind for i in optional if i.kind in served and self.synced(i.kind))

    def indices(self) -> dict[str, IndexView]:
        """Views by `children.index_id` (what `Observed.from_indices` reads)."""
        out: dict[str, IndexView] = {}
        for info in CACHED:
            caches = self.by_kind.get(info.kind)
            if caches:
                out[index_id(info)] = IndexView(caches)
        return out

    async def stop(self) -> None:
        for caches in self.by_kind.values():
            for cache in caches:
                await cache.stop()
        self.by_kind.clear()
