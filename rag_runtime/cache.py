"""Redis: cached query embeddings and search results, and per-key rate limits.

Result keys carry the collection's version as Postgres keeps it (bumped in the transaction of
every change), read before the search: stale results are never served, and there is no
invalidation that could fail (old ones expire on their own). Without Redis the cache is off
and rate limits are counted in process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from typing import Any, Protocol

import numpy as np
from redis.asyncio import Redis
from redis.exceptions import RedisError

from rag_runtime.embedding import Vectors

PREFIX = "rag:"


class Collection(Protocol):
    """What the cache needs of a collection (rag_runtime.store.Collection has it)."""

    @property
    def id(self) -> int: ...

    @property
    def version(self) -> int: ...


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class Cache:
    def __init__(self, redis: Redis | None, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    @property
    def enabled(self) -> bool:
        return self.redis is not None and self.ttl_s > 0

    async def get_embedding(self, model: str, text: str) -> Vectors | None:
        if not self.enabled:
            return None
        assert self.redis is not None
        try:
            raw = await self.redis.get(PREFIX + "emb:" + _digest(model, text))
        except RedisError:
            return None
        return None if raw is None else np.frombuffer(raw, dtype=np.float32).copy()

    async def put_embedding(self, model: str, text: str, vector: Vectors) -> None:
        if not self.enabled:
            return
        assert self.redis is not None
        with contextlib.suppress(RedisError):
            await self.redis.set(
                PREFIX + "emb:" + _digest(model, text),
                np.asarray(vector, dtype=np.float32).tobytes(),
                ex=self.ttl_s,
            )

    async def get_results(self, collection: Collection, request: dict[str, Any]) -> Any | None:
        if not self.enabled:
            return None
        assert self.redis is not None
        try:
            raw = await self.redis.get(_results_key(collection, request))
        except RedisError:
            return None
        return None if raw is None else json.loads(raw)

    async def put_results(
        self, collection: Collection, request: dict[str, Any], value: Any
    ) -> None:
        """Store results computed from the collection as of `collection.version` (or later)."""
        if not self.enabled:
            return
        assert self.redis is not None
        with contextlib.suppress(RedisError):  # not cached: the next search computes again
            await self.redis.set(
                _results_key(collection, request), json.dumps(value, default=str), ex=self.ttl_s
            )

    async def cached_result_keys(self, collection: Collection) -> list[str]:
        """Keys of results cached under the collection's version (for checks)."""
        if self.redis is None:
            return []
        pattern = f"{PREFIX}res:{collection.id}:{collection.version}:*"
        keys = [k async for k in self.redis.scan_iter(pattern)]
        return [k.decode() if isinstance(k, bytes) else k for k in keys]


def _results_key(collection: Collection, request: dict[str, Any]) -> str:
    """Keyed by the collection's id and its version as read before the search ran.

    Postgres bumps the version in the transaction of every change to the collection's chunks,
    so results that a change could make stale are keyed under a version no later search
    reads; there is no separate invalidation step that could fail or come too late.
    """
    body = json.dumps(request, sort_keys=True, default=str)
    return f"{PREFIX}res:{collection.id}:{collection.version}:{_digest(body)}"


class RateLimiter:
    """Fixed one-minute windows per key: Redis when configured (shared by every replica),
    else this process. `kind` keeps the counters of separate limits apart."""

    def __init__(self, redis: Redis | None, per_minute: int, *, kind: str = "rl") -> None:
        self.redis = redis
        self.per_minute = per_minute
        self.kind = kind
        self._local: dict[tuple[str, int], int] = {}

    @staticmethod
    def _window() -> tuple[int, int]:
        now = time.time()
        return int(now // 60), max(1, int(60 - (now % 60)) + 1)

    def _name(self, key: str, window: int) -> str:
        return f"{PREFIX}{self.kind}:{_digest(key)}:{window}"

    async def hit(self, key: str) -> int | None:
        """Count a request; return seconds to wait when over the limit, else None."""
        if self.per_minute <= 0:
            return None
        window, retry_after = self._window()
        count: int
        if self.redis is not None:
            name = self._name(key, window)
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.incr(name)
                    pipe.expire(name, 120)
                    count = int((await pipe.execute())[0])
            except RedisError:
                count = self._local_hit(key, window)
        else:
            count = self._local_hit(key, window)
        return retry_after if count > self.per_minute else None

    async def blocked(self, key: str) -> int | None:
        """Seconds to wait when the key's count has reached the limit (counts nothing)."""
        if self.per_minute <= 0:
            return None
        window, retry_after = self._window()
        count = self._local.get((key, window), 0)
        if self.redis is not None:
            try:
                raw = await self.redis.get(self._name(key, window))
                count = max(count, int(raw or 0))
            except RedisError:
                pass
        return retry_after if count >= self.per_minute else None

    def _local_hit(self, key: str, window: int) -> int:
        self._local = {k: v for k, v in self._local.items() if k[1] >= window}
        self._local[(key, window)] = self._local.get((key, window), 0) + 1
        return self._local[(key, window)]
