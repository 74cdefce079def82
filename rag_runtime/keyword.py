"""BM25 arithmetic and the per-query snapshot of a collection's term statistics.

Scores are Okapi BM25 (k1 = 1.2, b = 0.75, idf = ln(1 + (N - df + 0.5) / (df + 0.5))) over
Postgres 'english' lexemes, summed over a query's distinct terms. Postgres keeps the
statistics (chunk count, total length, document frequency per term) transactionally; the
postings are scored in memory by rag_runtime.keyword_index.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class Term:
    id: int
    lexeme: str
    df: int
    idf: float


@dataclass(frozen=True)
class Snapshot:
    """A collection's change version and the statistics one query needs, read together."""

    version: int
    removed_since: int
    chunks: int
    avgdl: float
    terms: list[Term]


def idf(chunks: int, df: int) -> float:
    return math.log(1 + (chunks - df + 0.5) / (df + 0.5))


def term_score(*, idf: float, tf: int, length: int, avgdl: float) -> float:
    """One term's BM25 contribution to a chunk of `length` lexeme occurrences."""
    return idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / avgdl))


def snapshot(
    *,
    version: int,
    removed_since: int,
    chunks: int,
    total_length: int,
    terms: Iterable[tuple[int, str, int]],
) -> Snapshot:
    """Statistics as read from the collection row and the query's (id, lexeme, df) terms."""
    n = max(chunks, 1)
    return Snapshot(
        version=version,
        removed_since=removed_since,
        chunks=chunks,
        avgdl=max(total_length / n, 1.0),
        terms=sorted(
            (Term(int(i), lexeme, int(df), idf(n, int(df))) for i, lexeme, df in terms),
            key=lambda t: t.lexeme,
        ),
    )
