"""Backups, the pure parts: retention, names, what a runtime may restore, destination URLs.

Covers: retention by count, by age and both, never removing the newest; bad policies named;
backup names follow Kubernetes object names; a restore is allowed at head, behind head and
ahead by compatible migrations, refused ahead by a contract migration or with another
embedding model or dimension; destination URLs and their missing settings are named.
"""

from __future__ import annotations

import datetime as dt

import pytest

from rag_runtime.backup.manifest import (
    CollectionEntry,
    Counts,
    Manifest,
    RevisionEntry,
    check_name,
    default_name,
    restore_refusal,
)
from rag_runtime.backup.retention import to_remove
from rag_runtime.backup.storage import DestinationError, FileDestination, open_destination

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
REVS = [RevisionEntry(revision=r, down_revision=d, compatible_with_previous=False)
        for r, d in (("0001", None), ("0002", "0001"), ("0003", "0002"))]  # fmt: skip


def manifest(name: str, age_days: float = 0, revision: str = "0003", **kw: object) -> Manifest:
    when = NOW - dt.timedelta(days=age_days)
    base: dict[str, object] = dict(
        name=name, started_at=when, completed_at=when, runtime_version="0.1.0",
        schema_revision=revision, schema_revisions=REVS, postgres_version="18",
        collections=[CollectionEntry(name="c", embedding_model="m", embedding_dimensions=384,
                                     documents=1, chunks=1)],
        counts=Counts(collections=1, documents=1, chunks=1, postings=1, pending_documents=0),
        files=[], size=0,
    )  # fmt: skip
    base.update(kw)
    return Manifest.model_validate(base)


BACKUPS = [manifest("b5", 1), manifest("b4", 3), manifest("b3", 8), manifest("b2", 15),
           manifest("b1", 40)]  # fmt: skip


def test_retention_by_count_keeps_the_newest() -> None:
    assert to_remove(BACKUPS, now=NOW, keep_last=2, max_age_days=None) == ["b1", "b2", "b3"]


def test_retention_by_age() -> None:
    assert to_remove(BACKUPS, now=NOW, keep_last=None, max_age_days=10) == ["b1", "b2"]


def test_retention_by_count_and_age_removes_what_breaks_either() -> None:
    assert to_remove(BACKUPS, now=NOW, keep_last=4, max_age_days=10) == ["b1", "b2"]
    assert to_remove(BACKUPS, now=NOW, keep_last=2, max_age_days=30) == ["b1", "b2", "b3"]


def test_retention_never_removes_the_newest_backup() -> None:
    old = [manifest("x", 100), manifest("y", 200)]
    assert to_remove(old, now=NOW, keep_last=None, max_age_days=1) == ["y"]


@pytest.mark.parametrize(
    ("keep", "age", "message"),
    [(None, None, "give --keep-last or --max-age-days"), (0, None, "--keep-last 0"),
     (None, 0, "--max-age-days 0")],
)  # fmt: skip
def test_bad_retention_policies_are_named(
    keep: int | None, age: float | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        to_remove(BACKUPS, now=NOW, keep_last=keep, max_age_days=age)


@pytest.mark.parametrize("name", ["nightly-1", "a", "backup-20260601t000000z", "v1.2"])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "Upper", "under_score", "-lead", "trail-", "x" * 64])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="--name"):
        check_name(name)


def test_default_name_is_a_valid_name() -> None:
    assert check_name(default_name(NOW)) == "backup-20260601t000000z"


def refusal(m: Manifest, model: str = "m", dims: int = 384) -> str | None:
    return restore_refusal(m, head="0003", known=["0003", "0002", "0001"],
                           embedding_model=model, embedding_dimensions=dims)  # fmt: skip


def test_restore_allowed_at_head_and_behind() -> None:
    assert refusal(manifest("a")) is None
    assert refusal(manifest("a", revision="0002")) is None


def test_restore_allowed_ahead_by_compatible_migrations_only() -> None:
    expand = RevisionEntry(revision="0004", down_revision="0003", compatible_with_previous=True)
    contract = RevisionEntry(revision="0005", down_revision="0004", compatible_with_previous=False)
    assert refusal(manifest("a", revision="0004", schema_revisions=[*REVS, expand])) is None
    why = refusal(manifest("a", revision="0005", schema_revisions=[*REVS, expand, contract]))
    assert why is not None
    assert "0005 cannot be run on by a runtime at 0003" in why


@pytest.mark.parametrize(("model", "dims"), [("other", 384), ("m", 768)])
def test_restore_refuses_another_embedding_model_or_dimension(model: str, dims: int) -> None:
    why = refusal(manifest("a"), model=model, dims=dims)
    assert why is not None
    assert "collection 'c' was built with m (384 dimensions)" in why


def test_destination_urls() -> None:
    assert isinstance(open_destination("file:///var/backups", {}), FileDestination)
    with pytest.raises(DestinationError, match="file:///absolute/path"):
        open_destination("file://host/x", {})
    with pytest.raises(DestinationError, match="s3://bucket/prefix"):
        open_destination("s3:///nobucket", {})
    with pytest.raises(DestinationError, match="set AWS_SECRET_ACCESS_KEY"):
        open_destination("s3://b/p", {"AWS_ACCESS_KEY_ID": "a"})
    with pytest.raises(DestinationError, match="RAG_BACKUP_S3_ENDPOINT"):
        open_destination("s3://b/p", {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s",
                                      "RAG_BACKUP_S3_ENDPOINT": "ftp://x"})  # fmt: skip


def test_restore_list_leaves_extensions_and_their_comments_out() -> None:
    from rag_runtime.backup.postgres import split_extensions

    toc = "\n".join(
        [
            ";",
            "; Archive created at 2026-12-02 19:30:00 UTC",
            "2; 3079 16385 EXTENSION - vector ",
            "3601; 0 0 COMMENT - EXTENSION vector ",
            "215; 1259 16390 TABLE public chunks rag",
            "3590; 0 16390 TABLE DATA public chunks rag",
            "3420; 1259 16420 INDEX public chunks_embedding_hnsw rag",
            "4; 3079 16400 EXTENSION - pg_trgm ",
        ]
    )
    extensions, kept = split_extensions(toc)
    assert extensions == ["vector", "pg_trgm"]
    assert "EXTENSION" not in kept
    assert kept.splitlines()[2:] == [
        "215; 1259 16390 TABLE public chunks rag",
        "3590; 0 16390 TABLE DATA public chunks rag",
        "3420; 1259 16420 INDEX public chunks_embedding_hnsw rag",
    ]
