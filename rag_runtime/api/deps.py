"""Request dependencies: the runtime, the caller's API key, rate limits, the collection."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Request, status

from rag_runtime.errors import RateLimitedError
from rag_runtime.runtime import Runtime
from rag_runtime.schemas import NAME_PATTERN
from rag_runtime.store import Collection


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key id (never the key) and the collections it may use (None = all)."""

    key_id: str
    collections: frozenset[str] | None

    def can_access(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections

    def require(self, collection: str) -> None:
        if not self.can_access(collection):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this API key has no access to {collection!r}"
            )


def parse_api_keys(entries: list[str]) -> dict[str, frozenset[str] | None]:
    """'key' grants every collection; 'key:a,b' grants collections a and b."""
    keys: dict[str, frozenset[str] | None] = {}
    for entry in entries:
        key, _, scope = entry.partition(":")
        names = frozenset(n.strip() for n in scope.split(",") if n.strip())
        keys[key.strip()] = names or None
    return keys


def _key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


async def authenticate(
    request: Request,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    keys: dict[str, frozenset[str] | None] = request.app.state.api_keys
    if not keys:
        client = request.client.host if request.client else "unknown"
        principal = Principal(key_id=f"anonymous:{client}", collections=None)
    else:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        token = token.strip()
        if token not in keys:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "unknown API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = Principal(key_id=_key_id(token), collections=keys[token])
    retry_after = await runtime.limiter.hit(principal.key_id)
    if retry_after is not None:
        raise RateLimitedError("rate limit exceeded for this API key", retry_after)
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def path_collection(
    name: Annotated[str, Path(pattern=NAME_PATTERN, description="Collection name.")],
    principal: PrincipalDep,
    runtime: RuntimeDep,
) -> Collection:
    principal.require(name)
    return await runtime.store.get_collection(name)


CollectionDep = Annotated[Collection, Depends(path_collection)]
