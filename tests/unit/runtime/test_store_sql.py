"""Metadata filters become `metadata @> ...` SQL (equality and `$in`); other operators are a
422 that names the `filters` field."""

from __future__ import annotations

import pytest
from psycopg import sql

from rag_runtime.errors import InvalidInputError
from rag_runtime.store import content_hash, filter_sql


def render(composed: sql.Composable) -> str:
    return repr(composed)


def test_no_filters_is_empty() -> None:
    clause, params = filter_sql(None)
    assert params == []
    assert clause.as_string(None) == ""  # type: ignore[arg-type]


def test_equality_and_in_filters() -> None:
    clause, params = filter_sql({"lang": "en", "year": {"$in": [2020, 2021]}})
    assert len(params) == 3
    assert [p.obj for p in params] == [{"lang": "en"}, {"year": 2020}, {"year": 2021}]
    assert "OR" in render(clause)


def test_unknown_operator_is_rejected() -> None:
    with pytest.raises(InvalidInputError) as exc:
        filter_sql({"year": {"$gt": 2000}})
    assert exc.value.field == "filters"


def test_content_hash_is_stable() -> None:
    assert content_hash("abc") == content_hash("abc")
    assert content_hash("abc") != content_hash("abd")
