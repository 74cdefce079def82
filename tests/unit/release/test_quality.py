"""The quality gate's arithmetic: nDCG@10, documents ranked by their first chunk, the gate.

Aspects covered: a perfect ranking scores 1, a relevant document at rank 2 scores 1/log2(3),
nothing relevant in the top 10 scores 0; hits count by document id or title; the gate fails
a canary below the fraction of stable's nDCG and passes one at it; a malformed golden set is
refused naming where it came from.
"""

from __future__ import annotations

import math

import pytest

from rag_operator.models.rollout import ConfigMapKeyRef, QualityGate
from rag_operator.release.quality import (
    GoldenSetError,
    gate_measurement,
    ndcg_at_k,
    parse_golden_set,
    ranked_documents,
)


@pytest.mark.parametrize(
    ("ranked", "relevant", "score"),
    [
        (["a", "b"], {"a"}, 1.0),
        (["x", "a"], {"a"}, 1 / math.log2(3)),
        (["a", "b", "c"], {"a", "b"}, 1.0),
        ([f"x{i}" for i in range(10)] + ["a"], {"a"}, 0.0),
        (["x"], set(), 0.0),
    ],
)
def test_ndcg_at_10(ranked: list[str], relevant: set[str], score: float) -> None:
    assert ndcg_at_k(ranked, frozenset(relevant)) == pytest.approx(score)


def test_documents_rank_by_their_first_chunk_by_id_or_title() -> None:
    hits = [
        {"document_id": "1", "document_title": "Pgvector"},
        {"document_id": "2", "document_title": "Redis"},
        {"document_id": "1", "document_title": "Pgvector"},
    ]
    assert ranked_documents(hits, frozenset({"Redis"})) == ["1", "Redis"]


def test_gate() -> None:
    gate = QualityGate(golden_set_ref=ConfigMapKeyRef(name="g"), min_fraction_of_stable=0.9)
    assert gate_measurement(gate, 0.5, 0.8).result == "fail"
    assert gate_measurement(gate, 0.73, 0.8).result == "pass"
    assert "stable's 0.8" in gate_measurement(gate, 0.5, 0.8).limit


def test_malformed_golden_set_is_refused_with_its_place() -> None:
    with pytest.raises(GoldenSetError, match="ConfigMap golden"):
        parse_golden_set('{"queries": []}', "ConfigMap golden")
    golden = parse_golden_set(
        '{"collection": "c", "queries": [{"query": "q", "relevant": [1]}]}', "x"
    )
    assert golden.queries[0].relevant == frozenset({"1"})
