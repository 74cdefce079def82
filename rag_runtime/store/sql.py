"""SQL shared by the store's parts: the text search configuration and metadata filters."""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from rag_runtime.errors import InvalidInputError

TEXT_CONFIG = "english"  # stemming and stopwords for full-text search


def filter_sql(filters: dict[str, Any] | None) -> tuple[sql.Composable, list[Any]]:
    """Metadata filters as SQL on `metadata` (GIN, jsonb_path_ops).

    `{"k": v}` means equal; `{"k": {"$in": [a, b]}}` means one of.
    """
    if not filters:
        return sql.SQL(""), []
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    for key, value in filters.items():
        if isinstance(value, dict):
            if set(value) != {"$in"} or not isinstance(value["$in"], list):
                raise InvalidInputError(
                    f"filter {key!r}: use a value or {{'$in': [values]}}", field="filters"
                )
            options = [sql.SQL("metadata @> %s") for _ in value["$in"]]
            params.extend(Jsonb({key: v}) for v in value["$in"])
            clauses.append(
                sql.SQL("({})").format(sql.SQL(" OR ").join(options))
                if options
                else sql.SQL("false")
            )
        else:
            clauses.append(sql.SQL("metadata @> %s"))
            params.append(Jsonb({key: value}))
    return sql.SQL(" AND ") + sql.SQL(" AND ").join(clauses), params
