"""The served OpenAPI describes the running API: its access (a key, or anonymous), links that
lead to real operations, and request checks whose messages can be sent back."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pytest
from pydantic import ValidationError

from rag_runtime.api.guard import PUBLIC_PATHS
from rag_runtime.app import create_app
from rag_runtime.schemas import DocumentCreate, storable_text_problem
from rag_runtime.settings import Settings

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def openapi(**settings: Any) -> dict[str, Any]:
    return create_app(Settings(**settings)).openapi()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if method in METHODS
    ]


def test_anonymous_access_declares_no_security_and_no_key_errors() -> None:
    schema = openapi(allow_anonymous=True)
    assert "securitySchemes" not in schema.get("components", {})
    for path, method, op in operations(schema):
        assert "security" not in op, (method, path)
        assert not {"401", "403"} & set(op["responses"]), (method, path)


def test_keyed_access_declares_the_bearer_key_on_every_guarded_operation() -> None:
    schema = openapi(api_keys=["k"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    for path, method, op in operations(schema):
        if path in PUBLIC_PATHS:
            continue
        assert op.get("security") == [{"HTTPBearer": []}], (method, path)
        assert {"401", "403"} <= set(op["responses"]), (method, path)


def test_every_link_leads_to_an_operation_and_fills_its_path_parameters() -> None:
    schema = openapi(api_keys=["k"])
    links = [
        (name, target)
        for _, _, op in operations(schema)
        for response in op["responses"].values()
        for name, target in response.get("links", {}).items()
    ]
    assert {"GetDocument", "RetryDocument", "UploadDocument"} <= {name for name, _ in links}
    for name, target in links:
        pointer = target["operationRef"].removeprefix("#/paths/")
        raw_path, method = pointer.rsplit("/", 1)
        path = unquote(raw_path).replace("~1", "/").replace("~0", "~")
        op = schema["paths"][path][method]
        wanted = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert wanted == set(target["parameters"]), name


def test_a_key_no_encoder_can_write_is_named_with_escapes() -> None:
    problem = storable_text_problem({"meta": {"lone\ud800": 1, "nul\x00": 2}})
    assert problem is not None
    problem.encode("utf-8")  # the message itself goes back in a response and to the logs
    assert "surrogate" in problem


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_text_of_only_whitespace_is_refused_as_an_empty_document(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        DocumentCreate(text=text)
    assert "empty" in info.value.errors()[0]["msg"]


@pytest.mark.parametrize(
    "text", ["plain", " spaced ", "x\n", "😀", "", " ", "\t\n", "a\x00b", "\x00"]
)
def test_the_documented_text_patterns_say_what_the_api_accepts(text: str) -> None:
    """For valid Unicode; a lone surrogate is refused too, which no pattern can name."""
    schema = DocumentCreate.model_json_schema()["properties"]
    documented = re.search(schema["text"]["pattern"], text) is not None
    try:
        DocumentCreate(text=text)
        accepted = True
    except ValidationError:
        accepted = False
    assert documented == accepted
    storable = re.search(schema["title"]["pattern"], text) is not None
    assert storable == (storable_text_problem(text) is None)
