"""Documents: create (JSON text or file upload), list, get with ingestion status, retry, delete."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status

from rag_runtime.api.deps import CollectionDep, RuntimeDep
from rag_runtime.api.responses import error_responses, link
from rag_runtime.domain import DocumentStatus
from rag_runtime.errors import (
    ConflictError,
    InvalidInputError,
    PayloadTooLargeError,
    ServiceUnavailableError,
)
from rag_runtime.extract import detect_content_type
from rag_runtime.ingest import IngestQueue
from rag_runtime.runtime import Runtime
from rag_runtime.schemas import (
    STORABLE,
    DocumentCreate,
    DocumentOut,
    DocumentPage,
    RetryOut,
    storable_text_problem,
)
from rag_runtime.store import Accepted, Collection, Document

log = logging.getLogger(__name__)
PREFIX = "/api/v1/collections/{name}/documents"
router = APIRouter(
    prefix=PREFIX,
    tags=["documents"],
    responses=error_responses(),
)


def document_out(d: Document) -> DocumentOut:
    return DocumentOut(
        id=d.id,
        collection=d.collection,
        title=d.title,
        source=d.source,
        content_type=d.content_type,
        content_hash=d.content_hash,
        metadata=d.metadata,
        status=DocumentStatus(d.status),
        error=d.error,
        attempts=d.attempts,
        chunks=d.chunk_count,
        created_at=d.created_at,
        updated_at=d.updated_at,
        duplicate_of=d.duplicate_of,
    )


async def _accept(
    runtime: Runtime,
    collection: Collection,
    response: Response,
    *,
    text: str,
    title: str,
    source: str | None,
    content_type: str,
    metadata: dict[str, Any],
    field: str,
) -> DocumentOut:
    if not text.strip():
        raise InvalidInputError(f"{field}: the document is empty", field=field)
    if len(text.encode("utf-8")) > runtime.settings.max_document_bytes:
        raise PayloadTooLargeError(
            f"{field}: document exceeds {runtime.settings.max_document_bytes} bytes"
        )
    doc, accepted = await runtime.store.create_document(
        collection,
        content=text,
        title=title,
        source=source,
        content_type=content_type,
        metadata=metadata,
    )
    if accepted is not Accepted.EXISTING or doc.status == "queued":
        await _queue(runtime).enqueue(doc.id)
    fresh = accepted is not Accepted.EXISTING
    response.status_code = status.HTTP_202_ACCEPTED if fresh else status.HTTP_200_OK
    return document_out(doc)


def _queue(runtime: Runtime) -> IngestQueue:
    assert runtime.queue is not None  # the API always has one
    return runtime.queue


DOCUMENT = PREFIX + "/{document_id}"
_IDS = {"name": "$response.body#/collection", "document_id": "$response.body#/id"}
DOCUMENT_LINKS = {
    "GetDocument": link(DOCUMENT, "get", "The document and its ingestion status", _IDS),
    "RetryDocument": link(DOCUMENT + "/retry", "post", "Queue it again if it failed", _IDS),
    "DeleteDocument": link(DOCUMENT, "delete", "Remove the document", _IDS),
}
RESENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A re-send of a document that is queued, processing or ready",
        "links": DOCUMENT_LINKS,
    },
    202: {
        "description": "A new document (or a re-send of a failed one), queued",
        "links": DOCUMENT_LINKS,
    },
}


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses=RESENT)
async def create_document(
    body: DocumentCreate, collection: CollectionDep, runtime: RuntimeDep, response: Response
) -> DocumentOut:
    """Queue a document given as JSON text.

    A re-send (identical text, title, source and metadata) returns the existing document,
    queued again if it had failed. Identical text with another title, source or metadata is
    a separate document whose `duplicate_of` names the earlier one.
    """
    text = body.text
    title = body.title
    if body.content_type == "text/html":
        text, found = await runtime.parser.extract(text.encode(), "text/html")
        title = title or found or ""
    return await _accept(
        runtime,
        collection,
        response,
        text=text,
        title=title,
        source=body.source,
        content_type=body.content_type,
        metadata=body.metadata,
        field="text",
    )


UPLOAD_ENCODING = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "encoding": {
                    "file": {"contentType": "text/plain, text/markdown, text/html, application/pdf"}
                }
            }
        }
    }
}


@router.post(
    "/upload",
    status_code=status.HTTP_202_ACCEPTED,
    responses=RESENT,
    openapi_extra=UPLOAD_ENCODING,
)
async def upload_document(
    file: Annotated[UploadFile, File(description="A .txt, .md, .html or .pdf file.")],
    collection: CollectionDep,
    runtime: RuntimeDep,
    response: Response,
    request: Request,
    title: Annotated[str, Form(json_schema_extra=STORABLE)] = "",
    metadata: Annotated[str, Form(description="JSON object")] = "{}",
) -> DocumentOut:
    """Queue a document uploaded as a file (multipart form field `file`); re-sends as above."""
    _refuse_repeated_fields(await request.form(), ("file", "title", "metadata"))
    content_type = detect_content_type(file.filename, file.content_type)
    try:
        meta = json.loads(metadata)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"metadata: not JSON ({exc.msg})", field="metadata") from exc
    if not isinstance(meta, dict):
        raise InvalidInputError("metadata: must be a JSON object", field="metadata")
    for value, field in ((meta, "metadata"), (title, "title"), (file.filename, "file")):
        problem = storable_text_problem(value, field)
        if problem:
            raise InvalidInputError(problem, field=field)
    limit = runtime.settings.max_document_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLargeError(f"file: document exceeds {limit} bytes")
    if not data.strip():
        raise InvalidInputError("file: the document is empty", field="file")
    if b"\x00" in data and content_type != "application/pdf":
        raise InvalidInputError("file: text holds a NUL character", field="file")
    text, found = await runtime.parser.extract(data, content_type)  # off the event loop
    title = title or found or ""
    return await _accept(
        runtime,
        collection,
        response,
        text=text,
        title=title or (file.filename or ""),
        source=file.filename,
        content_type=content_type,
        metadata=meta,
        field="file",
    )


def _refuse_repeated_fields(form: Any, names: tuple[str, ...]) -> None:
    """A field sent more than once is ambiguous (which one counts?): refuse it, naming it."""
    for name in names:
        count = len(form.getlist(name))
        if count > 1:
            raise InvalidInputError(f"{name}: given {count} times; send it once", field=name)


@router.post("/retry", status_code=status.HTTP_202_ACCEPTED)
async def retry_failed_documents(collection: CollectionDep, runtime: RuntimeDep) -> RetryOut:
    """Queue every failed document of the collection again (after the cause is fixed)."""
    ids = await runtime.store.retry_documents(collection)
    for document_id in ids:
        await _queue(runtime).enqueue(document_id)
    return RetryOut(requeued=len(ids), documents=ids)


@router.post(
    "/{document_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"description": "The document is queued or processing already"},
        409: {"description": "The document is ready: there is nothing to retry"},
    },
)
async def retry_document(
    document_id: uuid.UUID, collection: CollectionDep, runtime: RuntimeDep, response: Response
) -> DocumentOut:
    """Queue a failed document again; its error is cleared."""
    requeued = await runtime.store.retry_documents(collection, [document_id])
    doc = await runtime.store.get_document(document_id, collection=collection)
    if requeued:
        await _queue(runtime).enqueue(document_id)
    elif doc.status == "ready":
        raise ConflictError(f"document {document_id} is ready; only failed documents are retried")
    else:
        response.status_code = status.HTTP_200_OK
    return document_out(doc)


@router.get("")
async def list_documents(
    collection: CollectionDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    status_filter: Annotated[
        str | None, Query(alias="status", pattern="^(queued|processing|ready|failed)$")
    ] = None,
) -> DocumentPage:
    docs, total = await runtime.store.list_documents(
        collection, limit=limit, offset=offset, status=status_filter
    )
    return DocumentPage(
        items=[document_out(d) for d in docs], total=total, limit=limit, offset=offset
    )


@router.get("/{document_id}")
async def get_document(
    document_id: uuid.UUID, collection: CollectionDep, runtime: RuntimeDep
) -> DocumentOut:
    """The document with its ingestion status (queued, processing, ready, failed + error)."""
    return document_out(await runtime.store.get_document(document_id, collection=collection))


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_document(
    document_id: uuid.UUID, collection: CollectionDep, runtime: RuntimeDep
) -> Response:
    """Remove the document, its chunks and vectors, cached results and graph nodes."""
    await runtime.store.delete_document(collection, document_id)  # bumps its version
    if runtime.graph is not None:
        try:
            await runtime.graph.delete_document(document_id)
        except ServiceUnavailableError as exc:
            log.warning("graph nodes of %s not removed: %s", document_id, exc.log_text)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
