"""The error responses the API documents (every status a route can answer is in its OpenAPI)."""

from __future__ import annotations

from typing import Any

from rag_runtime.schemas import ErrorOut, ValidationErrorOut

_ERRORS = {
    400: "The body could not be parsed",
    401: "No API key, or an unknown one",
    403: "The API key has no access to this collection",
    404: "No such collection or document",
    409: "Conflicts with the current state (exists already, another embedding model)",
    413: "The body or the document is larger than allowed",
    415: "An unsupported document type",
    429: "Rate limited (per key, or after failed keys per address); see Retry-After",
    503: "A dependency the request needs is down; see Retry-After",
}


def error_responses() -> dict[int | str, dict[str, Any]]:
    """Every error a route under /api/v1 may answer, with its body's schema."""
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorOut, "description": text} for code, text in _ERRORS.items()
    }
    responses[422] = {"model": ValidationErrorOut, "description": "Invalid request"}
    return responses
