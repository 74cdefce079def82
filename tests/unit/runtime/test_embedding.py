"""Embedding batches: `plan_batches` covers every text once within the batch size, groups
similar lengths and pads less than fixed batches; `BatchingEmbedder` gives each caller its own
vectors, gathers concurrent callers into calls of at most `batch_size` texts, sends a lone
request straight through, runs every call on one thread and hands an encode error to every
caller of that call; the worker's compute threads sleep unless told otherwise."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import numpy as np
import pytest

from rag_runtime.embedding import (
    BatchingEmbedder,
    Vectors,
    plan_batches,
    sleeping_compute_threads,
)


def padded(lengths: list[int], batches: list[list[int]]) -> int:
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


@pytest.mark.parametrize("batch_size", [1, 3, 8, 64])
def test_plan_covers_every_text_once_within_the_batch_size(batch_size: int) -> None:
    lengths = [(i * 37) % 250 + 5 for i in range(100)]
    batches = plan_batches(lengths, batch_size)
    assert sorted(i for b in batches for i in b) == list(range(100))
    assert all(1 <= len(b) <= batch_size for b in batches)


def test_plan_groups_similar_lengths_and_pads_less_than_fixed_batches() -> None:
    lengths = [256] * 20 + [40] * 20
    batches = plan_batches(lengths, 64)
    assert [sorted({lengths[i] for i in b}) for b in batches] == [[256], [40]]
    fixed = [list(range(40))]  # one sorted batch of 64, as sentence-transformers would run
    assert padded(lengths, batches) < padded(lengths, fixed)


def test_plan_keeps_near_equal_lengths_in_one_batch() -> None:
    assert plan_batches([200, 199, 198, 197], 64) == [[0, 1, 2, 3]]


def test_plan_of_nothing_is_empty() -> None:
    assert plan_batches([], 64) == []


class Recorder:
    """An `encode` that returns each text's length as its vector and records its calls."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.threads: set[int] = set()
        self.fail = fail

    def __call__(self, texts: list[str]) -> Vectors:
        self.calls.append(list(texts))
        self.threads.add(threading.get_ident())
        if self.fail:
            raise RuntimeError("model broke")
        return np.array([[len(t), 0.0] for t in texts], dtype=np.float32)


def embedder(encode: Recorder, batch_size: int = 4) -> BatchingEmbedder:
    return BatchingEmbedder(
        model_name="test",
        dimensions=2,
        max_tokens=16,
        encode=encode,
        tokenize_counts=lambda texts: [len(t) for t in texts],
        batch_size=batch_size,
    )


def test_concurrent_callers_get_their_own_vectors_in_capped_calls() -> None:
    async def scenario() -> None:
        rec = Recorder()
        emb = embedder(rec, batch_size=4)
        requests = [["x" * (i + 1), "y" * (i + 10)] for i in range(6)]
        try:
            results = await asyncio.gather(*(emb.embed(r) for r in requests))
        finally:
            await emb.close()
        for texts, vectors in zip(requests, results, strict=True):
            assert vectors[:, 0].tolist() == [len(t) for t in texts]
        assert all(len(call) <= 4 for call in rec.calls)
        assert sum(len(call) for call in rec.calls) == 12
        assert len(rec.calls) < 6  # callers were gathered, not run one by one
        assert len(rec.threads) == 1  # one model thread for every call

    asyncio.run(scenario())


def test_a_request_larger_than_a_batch_goes_whole() -> None:
    async def scenario() -> None:
        rec = Recorder()
        emb = embedder(rec, batch_size=2)
        try:
            vectors = await emb.embed(["a", "bb", "ccc", "dddd", "eeeee"])
        finally:
            await emb.close()
        assert vectors[:, 0].tolist() == [1, 2, 3, 4, 5]
        assert rec.calls == [["a", "bb", "ccc", "dddd", "eeeee"]]

    asyncio.run(scenario())


def test_a_lone_request_goes_straight_to_the_model() -> None:
    async def scenario() -> None:
        rec = Recorder()
        emb = embedder(rec)
        emb.linger_s = 10.0  # a linger would time the test out
        try:
            vectors = await asyncio.wait_for(emb.embed(["query"]), 5)
        finally:
            await emb.close()
        assert vectors.shape == (1, 2)

    asyncio.run(scenario())


def test_an_encode_error_reaches_every_caller_of_that_call() -> None:
    async def scenario() -> None:
        emb = embedder(Recorder(fail=True))
        try:
            results = await asyncio.gather(
                emb.embed(["a"]), emb.embed(["b"]), return_exceptions=True
            )
        finally:
            await emb.close()
        assert all(isinstance(r, RuntimeError) for r in results)

    asyncio.run(scenario())


def test_no_texts_need_no_model() -> None:
    async def scenario() -> None:
        rec = Recorder()
        vectors = await embedder(rec).embed([])
        assert vectors.shape == (0, 2)
        assert rec.calls == []

    asyncio.run(scenario())


def test_compute_threads_sleep_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert sleeping_compute_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    sleeping_compute_threads()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
