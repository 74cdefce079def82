"""BM25 arithmetic, the in-memory keyword index (add, remove, merge, rank) and the reader of
the packed postings that feed it."""

from __future__ import annotations

import math
import random
import struct

import numpy as np
import pytest

from rag_runtime import keyword
from rag_runtime.keyword_index import MAX_SEGMENTS, KeywordIndex
from rag_runtime.store import parse_postings


def test_idf_matches_the_okapi_formula() -> None:
    assert keyword.idf(1000, 10) == pytest.approx(math.log(1 + 990.5 / 10.5))
    assert keyword.idf(1000, 1000) > 0  # the +1 keeps ubiquitous terms positive


def test_term_score_saturates_and_prefers_short_chunks() -> None:
    scores = [keyword.term_score(idf=2.0, tf=tf, length=50, avgdl=50.0) for tf in (1, 2, 10)]
    assert scores == sorted(scores)
    assert all(s < 2.0 * (keyword.K1 + 1) for s in scores)
    assert keyword.term_score(idf=2.0, tf=1, length=50, avgdl=50.0) == pytest.approx(2.0)
    assert keyword.term_score(idf=1.0, tf=1, length=100, avgdl=50.0) < 1.0


def test_snapshot_computes_idf_and_average_length() -> None:
    snap = keyword.snapshot(
        version=3, removed_since=0, chunks=10, total_length=250, terms=[(7, "b", 2), (5, "a", 9)]
    )
    assert snap.avgdl == 25.0
    assert [t.lexeme for t in snap.terms] == ["a", "b"]
    assert snap.terms[1].idf == pytest.approx(keyword.idf(10, 2))
    empty = keyword.snapshot(version=0, removed_since=0, chunks=0, total_length=0, terms=[])
    assert empty.avgdl == 1.0


# A small collection: chunk id -> {term id: tf}
CHUNKS: dict[int, dict[int, int]] = {
    10: {1: 1, 2: 3},
    11: {2: 1},
    12: {1: 2, 3: 1},
    13: {3: 5},
}


def add(index: KeywordIndex, version: int, chunks: dict[int, dict[int, int]]) -> None:
    ids = np.array(list(chunks), dtype=np.int64)
    postings = [(cid, t, tf) for cid, terms in chunks.items() for t, tf in terms.items()]
    index.apply(
        version,
        chunk_ids=ids,
        lengths=np.array([sum(chunks[c].values()) for c in chunks], dtype=np.float64),
        posting_chunks=np.array([p[0] for p in postings], dtype=np.int64),
        posting_terms=np.array([p[1] for p in postings], dtype=np.int64),
        posting_tfs=np.array([p[2] for p in postings], dtype=np.float64),
        removed=np.empty(0, np.int64),
    )


def remove(index: KeywordIndex, version: int, ids: list[int]) -> None:
    empty_i = np.empty(0, np.int64)
    index.apply(
        version,
        chunk_ids=empty_i,
        lengths=np.empty(0, np.float64),
        posting_chunks=empty_i,
        posting_terms=empty_i,
        posting_tfs=np.empty(0, np.float64),
        removed=np.array(ids, dtype=np.int64),
    )


def brute_force(
    chunks: dict[int, dict[int, int]], terms: list[tuple[int, float]], avgdl: float
) -> list[tuple[int, float]]:
    out = []
    for cid, tfs in chunks.items():
        length = sum(tfs.values())
        score = sum(
            keyword.term_score(idf=idf, tf=tfs[t], length=length, avgdl=avgdl)
            for t, idf in terms
            if t in tfs
        )
        if score > 0:
            out.append((cid, score))
    return sorted(out, key=lambda x: (-round(x[1], 9), x[0]))


def ranked(index: KeywordIndex, terms: list[tuple[int, float]], avgdl: float, k: int | None):  # type: ignore[no-untyped-def]
    slots, scores = index.ranked(terms, avgdl, k)
    return [(r.chunk_id, r.score, r.term_ids) for r in index.describe(slots, scores, terms)]


def test_ranking_equals_brute_force_bm25() -> None:
    index = KeywordIndex()
    add(index, 1, CHUNKS)
    terms = [(1, 1.5), (2, 0.7), (3, 2.0), (99, 5.0)]
    got = ranked(index, terms, 2.5, None)
    want = brute_force(CHUNKS, terms, 2.5)
    assert [(c, pytest.approx(s)) for c, s, _ in got] == want
    assert {c: t for c, _, t in got}[12] == [1, 3]
    assert [c for c, _, _ in ranked(index, terms, 2.5, 2)] == [c for c, _ in want[:2]]
    assert ranked(index, [(99, 1.0)], 2.5, 5) == []


def test_ties_are_broken_by_chunk_id_even_at_the_cut() -> None:
    index = KeywordIndex()
    add(index, 1, {5: {1: 1}, 3: {1: 1}, 4: {1: 1}, 9: {2: 1}})
    assert [c for c, _, _ in ranked(index, [(1, 1.0)], 1.0, 2)] == [3, 4]


def test_removed_chunks_disappear_and_new_ones_appear() -> None:
    index = KeywordIndex()
    add(index, 1, CHUNKS)
    remove(index, 2, [10, 12])
    add(index, 3, {20: {1: 1}})
    assert index.version == 3
    assert [c for c, _, _ in ranked(index, [(1, 1.0)], 2.0, None)] == [20]
    assert index.live_chunks == 3
    assert index.dead_fraction() == pytest.approx(2 / 5)


def test_many_small_updates_merge_into_one_segment_with_the_same_results() -> None:
    rng = random.Random(3)
    index = KeywordIndex()
    everything: dict[int, dict[int, int]] = {}
    next_id = 100
    for version in range(1, 4 * MAX_SEGMENTS):
        batch = {}
        for _ in range(rng.randint(1, 5)):
            batch[next_id] = {rng.randint(1, 8): rng.randint(1, 3) for _ in range(3)}
            next_id += 1
        add(index, version, batch)
        everything.update(batch)
        if version % 5 == 0:
            gone = rng.sample(sorted(everything), 2)
            remove(index, version, gone)
            for cid in gone:
                everything.pop(cid)
        assert len(index.segments) <= MAX_SEGMENTS
    terms = [(t, 1.0 + t / 10) for t in range(1, 9)]
    avgdl = 4.0
    got = ranked(index, terms, avgdl, None)
    assert [(c, pytest.approx(s)) for c, s, _ in got] == brute_force(everything, terms, avgdl)


def test_postings_that_name_unknown_chunks_are_refused() -> None:
    index = KeywordIndex()
    with pytest.raises(ValueError, match="not loaded"):
        index.apply(
            1,
            chunk_ids=np.array([1], dtype=np.int64),
            lengths=np.array([1.0]),
            posting_chunks=np.array([2], dtype=np.int64),
            posting_terms=np.array([1], dtype=np.int64),
            posting_tfs=np.array([1.0]),
            removed=np.empty(0, np.int64),
        )


def packed(rows: list[tuple[int, int, int]]) -> bytes:
    return b"".join(struct.pack(">qqi", chunk, term, tf) for chunk, term, tf in rows)


def test_packed_postings_are_read_as_columns() -> None:
    rows = parse_postings(packed([(1, 2, 3), (2**40, 7, 1)]))
    assert rows["chunk"].tolist() == [1, 2**40]
    assert rows["term"].tolist() == [2, 7]
    assert rows["tf"].tolist() == [3, 1]
    assert len(parse_postings(b"")) == 0


def test_truncated_postings_are_refused() -> None:
    with pytest.raises(ValueError, match="not whole 20-byte rows"):
        parse_postings(packed([(1, 2, 3)])[:-1])
