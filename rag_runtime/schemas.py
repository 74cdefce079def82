"""Request and response bodies of the HTTP API (also what the CLI prints)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
    with_config,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType, TypedDict

from rag_runtime.domain import DocumentStatus, FusionMethod, RetrievalStrategy

NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"
# Text Postgres can store, as the OpenAPI can say it: no NUL. A lone surrogate (not valid
# Unicode) is refused as well, but no pattern can name it: validators built on Unicode
# scalar values (jsonschema-rs, which schemathesis uses) reject such a pattern outright.
# `Strict` enforces both. NOT_BLANK adds one character that is not whitespace.
STORABLE_TEXT = r"^[^\u0000]*$"
STORABLE: dict[str, JsonValue] = {"pattern": STORABLE_TEXT}
NOT_BLANK: dict[str, JsonValue] = {"pattern": r"^[^\u0000]*[^\s\u0000][^\u0000]*$"}


def _printable(key: Any) -> str:
    """A key as a path may name it: what Postgres cannot store (and a lone surrogate, which
    no encoder can write) spelled as escapes, so the message itself is always valid text."""
    return str(key).encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def storable_text_problem(value: Any, path: str = "") -> str | None:
    """Where a value holds text Postgres cannot store (NUL, a lone surrogate), or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{path or 'value'}: text holds a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{path or 'value'}: text holds a lone surrogate (not valid Unicode)"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{_printable(key)}" if path else _printable(key)
            problem = storable_text_problem(key, where) or storable_text_problem(item, where)
            if problem:
                return problem
    if isinstance(value, list):
        for i, item in enumerate(value):
            problem = storable_text_problem(item, f"{path}[{i}]")
            if problem:
                return problem
    return None


def _json_number(value: Any) -> Any:
    """Numbers as JSON has them: a string or a boolean is not one (no lax coercion)."""
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON number")
    return value


NUMBER = BeforeValidator(_json_number)  # after the constraints, so the schema keeps them


class Strict(BaseModel):
    """A request body: no unknown fields, no text Postgres cannot store."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        problem = storable_text_problem(data)
        if problem:
            raise ValueError(problem)
        return data


class ErrorOut(BaseModel):
    """What every error but a validation error (422) carries."""

    detail: str
    field: str | None = None


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """A request that is not valid (422): each issue, the fields named, one message."""

    detail: list[ValidationIssue]
    fields: list[str]
    message: str


StorableStr = Annotated[str, Field(pattern=STORABLE_TEXT)]
_KEYS: dict[str, JsonValue] = {"propertyNames": STORABLE}  # Strict checks keys as well
StorableObject = Annotated[dict[str, "StorableJson"], Field(json_schema_extra=_KEYS)]
# Any JSON whose text Postgres can store (what a filter compares metadata with).
StorableJson = TypeAliasType(
    "StorableJson", "StorableStr | int | float | bool | list[StorableJson] | StorableObject | None"
)
InValues = TypedDict("InValues", {"$in": list[StorableJson]})  # one of these values
with_config(ConfigDict(extra="forbid"))(InValues)
FilterValue = StorableStr | int | float | bool | list[StorableJson] | InValues | None
Filters = Annotated[dict[str, FilterValue], Field(json_schema_extra=_KEYS)]


def _not_blank(text: str) -> str:
    """The document text holds more than whitespace (the 422 says it is empty)."""
    if not text.strip():
        raise PydanticCustomError("empty_document", "the document is empty (only whitespace)")
    return text


class CollectionCreate(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Collection name (tenant or use).")
    description: str = Field("", max_length=1000, json_schema_extra=STORABLE)


class CollectionOut(BaseModel):
    name: str
    description: str
    embedding_model: str
    embedding_dimensions: int
    documents: int
    chunks: int
    created_at: datetime


class DocumentCreate(Strict):
    text: Annotated[str, AfterValidator(_not_blank)] = Field(
        description="Document text (plain or markdown); not only whitespace.",
        json_schema_extra=NOT_BLANK,  # _not_blank and Strict enforce it, each with its message
    )
    title: str = Field("", max_length=1000, json_schema_extra=STORABLE)
    source: str | None = Field(None, max_length=2000, json_schema_extra=STORABLE)
    metadata: dict[str, Any] = Field(default_factory=dict)
    content_type: Literal["text/plain", "text/markdown", "text/html"] = "text/plain"


class DocumentOut(BaseModel):
    id: uuid.UUID
    collection: str
    title: str
    source: str | None
    content_type: str
    content_hash: str
    metadata: dict[str, Any]
    status: DocumentStatus
    error: str | None
    attempts: int
    chunks: int
    created_at: datetime
    updated_at: datetime
    duplicate_of: uuid.UUID | None = Field(
        None,
        description="The earliest earlier document of the collection with identical content "
        "(stored separately, because its title, source or metadata differ); null if none.",
    )


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    total: int
    limit: int
    offset: int


class RetryOut(BaseModel):
    requeued: int = Field(description="Failed documents queued again.")
    documents: list[uuid.UUID] = Field(description="Their ids.")


class SearchRequest(Strict):
    collection: str = Field(pattern=NAME_PATTERN)
    query: str = Field(min_length=1, max_length=4000, json_schema_extra=STORABLE)
    strategy: RetrievalStrategy | None = Field(None, description="Default from settings.")
    top_k: Annotated[int, Field(ge=1, le=1000), NUMBER] | None = None
    filters: Filters | None = Field(
        None, description="Metadata filters: {key: value} or {key: {'$in': [values]}}."
    )
    similarity_threshold: Annotated[float, Field(ge=-1.0, le=1.0), NUMBER] | None = None
    fusion: FusionMethod | None = None
    rrf_k: Annotated[int, Field(ge=1, le=1000), NUMBER] | None = None
    vector_weight: Annotated[float, Field(ge=0.0, le=1.0), NUMBER] | None = None

    @field_validator("filters", mode="before")
    @classmethod
    def _operators(cls, value: Any) -> Any:
        """One message for an operator other than `$in` (not each member of the union)."""
        for key, item in value.items() if isinstance(value, dict) else ():
            operator = isinstance(item, dict)
            if operator and (set(item) != {"$in"} or not isinstance(item["$in"], list)):
                raise ValueError(f"filter {key!r}: use a value or {{'$in': [values]}}")
        return value


class SearchHit(BaseModel):
    chunk_id: int
    document_id: uuid.UUID
    document_title: str
    ordinal: int
    text: str
    metadata: dict[str, Any]
    score: float
    evidence: dict[str, Any]


class SearchResponse(BaseModel):
    collection: str
    strategy: RetrievalStrategy
    results: list[SearchHit]
    cached: bool = False
    took_ms: float


class QueryRequest(SearchRequest):
    stream: bool = Field(False, strict=True, description="Answer as server-sent events.")
    max_tokens: Annotated[int, Field(ge=1, le=8192), NUMBER] = 512


class Citation(BaseModel):
    index: int = Field(description="1-based position in `results`.")
    chunk_id: int
    document_id: uuid.UUID


class QueryResponse(BaseModel):
    answer: str
    citations: list[Citation]
    results: list[SearchHit]
    provider: str
    model: str
    strategy: RetrievalStrategy
