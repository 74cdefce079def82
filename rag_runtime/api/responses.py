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


def link(path: str, method: str, description: str, parameters: dict[str, str]) -> dict[str, Any]:
    """An OpenAPI link to the operation at `path` and `method` (values from a response)."""
    pointer = path.replace("~", "~0").replace("/", "~1").replace("{", "%7B").replace("}", "%7D")
    return {
        "operationRef": f"#/paths/{pointer}/{method}",
        "parameters": parameters,
        "description": description,
    }


# What only a keyed API answers: with anonymous access nobody is refused for a key.
_KEY_ONLY = ("401", "403")


def describe_anonymous_access(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI of an API serving without keys: no security required, no 401 or 403.

    In place, once (FastAPI caches the document); returns `schema`.
    """
    schema.get("components", {}).pop("securitySchemes", None)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            operation.pop("security", None)
            for code in _KEY_ONLY:
                operation.get("responses", {}).pop(code, None)
    return schema
