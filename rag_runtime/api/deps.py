"""Request dependencies: the runtime, the caller's API key, rate limits, the collection."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag_runtime.auth import Principal
from rag_runtime.runtime import Runtime
from rag_runtime.schemas import NAME_PATTERN
from rag_runtime.store import Collection


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def require(principal: Principal, collection: str) -> None:
    if not principal.can_access(collection):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"this API key has no access to {collection!r}"
        )


_bearer = HTTPBearer(auto_error=False, description="An API key of RAG_API_KEYS.")


async def authenticate(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> Principal:
    """The caller, as `AuthMiddleware` found it before the body was read."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # a route outside the middleware's reach: refuse, never allow
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def path_collection(
    name: Annotated[str, Path(pattern=NAME_PATTERN, description="Collection name.")],
    principal: PrincipalDep,
    runtime: RuntimeDep,
) -> Collection:
    require(principal, name)
    return await runtime.store.get_collection(name)


CollectionDep = Annotated[Collection, Depends(path_collection)]
