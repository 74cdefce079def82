"""A backup's manifest (written last: a backup without one is incomplete) and what a runtime
may restore (pure)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from pydantic import BaseModel, Field

from rag_runtime.migrate import Revision, SchemaState, judge

FORMAT = 1
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")
GRAPH_NOTE = (
    "not exported: the graph is derived from the chunks alone, so restore rebuilds it "
    "from Postgres (when RAG_NEO4J_URI is set)"
)
REDIS_NOTE = (
    "not kept: the cache holds derived results (a restored system starts cold); the queue's "
    "pending work is the documents not yet ready, which are in Postgres and re-queued on restore"
)


class FileEntry(BaseModel):
    name: str
    size: int = Field(ge=0)
    sha256: str


class CollectionEntry(BaseModel):
    name: str
    embedding_model: str
    embedding_dimensions: int
    documents: int
    chunks: int


class RevisionEntry(BaseModel):
    revision: str
    down_revision: str | None
    compatible_with_previous: bool


class Counts(BaseModel):
    collections: int
    documents: int
    chunks: int
    postings: int
    pending_documents: int = Field(description="Queued or processing: re-queued on restore.")


class Manifest(BaseModel):
    format: int = FORMAT
    name: str
    started_at: dt.datetime
    completed_at: dt.datetime
    runtime_version: str
    schema_revision: str | None
    schema_revisions: list[RevisionEntry]
    postgres_version: str
    collections: list[CollectionEntry]
    counts: Counts
    files: list[FileEntry]
    size: int
    graph: str = GRAPH_NOTE
    redis: str = REDIS_NOTE

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "started_at": self.started_at.isoformat(),
            "completed_at": self.completed_at.isoformat(),
            "size": self.size,
            "documents": self.counts.documents,
            "chunks": self.counts.chunks,
            "schema_revision": self.schema_revision,
            "runtime_version": self.runtime_version,
        }


def check_name(name: str) -> str:
    """A backup name: lower-case letters, digits, '.', '-' (a Kubernetes object name)."""
    if not NAME_RE.fullmatch(name):
        raise ValueError(
            f"--name {name!r}: use 1-63 lower-case letters, digits, '.' or '-', "
            "starting and ending with a letter or digit"
        )
    return name


def default_name(now: dt.datetime) -> str:
    return "backup-" + now.astimezone(dt.UTC).strftime("%Y%m%dt%H%M%Sz")


def restore_refusal(
    manifest: Manifest,
    *,
    head: str,
    known: Sequence[str],
    embedding_model: str,
    embedding_dimensions: int,
) -> str | None:
    """Why a runtime at `head` with this embedding model cannot serve the backup, or None.

    A backup behind head is fine (restore migrates it up); one ahead only by compatible
    migrations is fine; anything else is refused, naming the revisions. Every collection must
    have been built with the runtime's model and dimension.
    """
    if manifest.format != FORMAT:
        return (
            f"backup {manifest.name}: manifest format {manifest.format}, "
            f"this runtime reads {FORMAT}"
        )
    applied = {
        r.revision: Revision(r.revision, r.down_revision, r.compatible_with_previous)
        for r in manifest.schema_revisions
    }
    status = judge(manifest.schema_revision, head, known, applied)
    if manifest.schema_revision is None:
        return f"backup {manifest.name} holds no schema"
    if status.state not in (SchemaState.CURRENT, SchemaState.BEHIND, SchemaState.AHEAD):
        return f"backup {manifest.name}: {status.message}"
    for c in manifest.collections:
        if c.embedding_model != embedding_model or c.embedding_dimensions != embedding_dimensions:
            return (
                f"backup {manifest.name}: collection {c.name!r} was built with "
                f"{c.embedding_model} ({c.embedding_dimensions} dimensions); this runtime serves "
                f"{embedding_model} ({embedding_dimensions}): set RAG_EMBEDDING_MODEL and "
                "RAG_EMBEDDING_DIMENSIONS to the backup's"
            )
    return None
