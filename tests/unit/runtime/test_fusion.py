"""Hybrid fusion: reciprocal rank fusion and weighted (min-max normalized) fusion rank chunks
found by both lists first, honour weights, and explain each score."""

from __future__ import annotations

import pytest

from rag_runtime.retrieval import fuse_rrf, fuse_weighted
from rag_runtime.store import Scored


def lists() -> dict[str, list[Scored]]:
    return {
        "vector": [Scored(1, 0.9), Scored(2, 0.8), Scored(3, 0.1)],
        "keyword": [Scored(2, 12.0), Scored(4, 11.0), Scored(1, 1.0)],
    }


def test_rrf_puts_chunks_in_both_lists_first() -> None:
    fused = fuse_rrf(lists(), k=60, weights={})
    assert [h.chunk_id for h in fused[:2]] == [2, 1]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert fused[0].evidence["vector"]["rank"] == 2
    assert fused[0].evidence["keyword"]["rank"] == 1


def test_rrf_weights_shift_the_order() -> None:
    fused = fuse_rrf(lists(), k=1, weights={"vector": 1.0, "keyword": 0.0})
    assert [h.chunk_id for h in fused[:3]] == [1, 2, 3]


def test_weighted_fusion_normalizes_scores() -> None:
    fused = fuse_weighted(lists(), weights={"vector": 0.5, "keyword": 0.5})
    top = fused[0]
    assert top.chunk_id == 2
    assert top.evidence["fusion"] == "weighted"
    assert top.evidence["keyword"]["normalized"] == 1.0
    assert min(h.score for h in fused) >= 0
    assert max(h.score for h in fused) <= 1.0


def test_weighted_fusion_with_one_empty_list() -> None:
    fused = fuse_weighted({"vector": [Scored(7, 0.3)], "keyword": []}, weights={"vector": 1})
    assert [(h.chunk_id, h.score) for h in fused] == [(7, 1.0)]
