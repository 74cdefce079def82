"""Collections: one name space per tenant or use, bound to an embedding model."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status

from rag_runtime.api.deps import CollectionDep, PrincipalDep, RuntimeDep, require
from rag_runtime.api.responses import error_responses, link
from rag_runtime.errors import ServiceUnavailableError
from rag_runtime.schemas import CollectionCreate, CollectionOut
from rag_runtime.store import Collection

log = logging.getLogger(__name__)
PREFIX = "/api/v1/collections"
router = APIRouter(prefix=PREFIX, tags=["collections"], responses=error_responses())
_NAME = {"name": "$response.body#/name"}
_DOCUMENTS = PREFIX + "/{name}/documents"
COLLECTION_LINKS = {
    "GetCollection": link(PREFIX + "/{name}", "get", "The collection", _NAME),
    "DeleteCollection": link(PREFIX + "/{name}", "delete", "Remove the collection", _NAME),
    "AddDocument": link(_DOCUMENTS, "post", "Add a document as JSON text", _NAME),
    "UploadDocument": link(_DOCUMENTS + "/upload", "post", "Add a document as a file", _NAME),
    "ListDocuments": link(_DOCUMENTS, "get", "Its documents", _NAME),
}


def collection_out(c: Collection) -> CollectionOut:
    return CollectionOut(
        name=c.name,
        description=c.description,
        embedding_model=c.embedding_model,
        embedding_dimensions=c.embedding_dimensions,
        documents=c.document_count,
        chunks=c.chunk_count,
        created_at=c.created_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={201: {"description": "The collection, created", "links": COLLECTION_LINKS}},
)
async def create_collection(
    body: CollectionCreate, principal: PrincipalDep, runtime: RuntimeDep
) -> CollectionOut:
    require(principal, body.name)
    created = await runtime.store.create_collection(
        body.name,
        description=body.description,
        model=runtime.embedder.model_name,
        dimensions=runtime.embedder.dimensions,
    )
    return collection_out(created)


@router.get("")
async def list_collections(principal: PrincipalDep, runtime: RuntimeDep) -> list[CollectionOut]:
    return [
        collection_out(c)
        for c in await runtime.store.list_collections()
        if principal.can_access(c.name)
    ]


@router.get("/{name}")
async def get_collection(collection: CollectionDep) -> CollectionOut:
    return collection_out(collection)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_collection(collection: CollectionDep, runtime: RuntimeDep) -> Response:
    await runtime.store.delete_collection(collection.name)
    if runtime.graph is not None:
        try:
            await runtime.graph.delete_collection(collection.id)
        except ServiceUnavailableError as exc:  # deleted in Postgres: the graph sweep retries
            log.warning("graph of collection %s not removed yet: %s", collection.id, exc.log_text)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
