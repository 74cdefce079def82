"""The bundled MiniLM through `BatchingEmbedder`.

Covers: length-planned batches give the vectors a plain sentence-transformers `encode` gives
(normalized), for texts of very different lengths arriving from concurrent callers; queries
run on one compute thread; and chunking (token counts on other threads) running while the
model thread embeds changes neither the batches' padding nor the chunks' token counts.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from rag_runtime.chunking import Chunk, Chunker
from rag_runtime.embedding import (
    Vectors,
    bundled_model_path,
    load_model,
    sentence_transformer_embedder,
)
from tests.integration.runtime.helpers import settings

pytestmark = [pytest.mark.integration]


def test_planned_batches_embed_like_the_bare_model() -> None:
    emb = sentence_transformer_embedder(settings(embedding_batch_size=8))
    texts = [
        " ".join(f"protein {i} folds into shape {j}." for j in range(1 + (i * 7) % 40))
        for i in range(30)
    ]
    requests = [texts[i : i + 3] for i in range(0, len(texts), 3)]

    async def scenario() -> list[np.ndarray]:
        try:
            return list(await asyncio.gather(*(emb.embed(r) for r in requests)))
        finally:
            await emb.close()

    got = np.concatenate(asyncio.run(scenario()))
    model = load_model(bundled_model_path())
    want = model.encode(texts, batch_size=64, normalize_embeddings=True)
    assert got.shape == (30, emb.dimensions)
    assert np.allclose(got, want, atol=1e-5)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_queries_use_one_compute_thread_and_batches_all() -> None:
    """A lone query runs on one torch thread; a batch in the same thread gets them all back."""
    import torch

    emb = sentence_transformer_embedder(settings())
    before = torch.get_num_threads()
    query = emb.encode(["does aspirin thin the blood?"])
    assert torch.get_num_threads() == 1
    batch = emb.encode([f"chunk {i} about aspirin and blood." for i in range(16)])
    assert torch.get_num_threads() == before
    model = load_model(bundled_model_path())
    want = model.encode(["does aspirin thin the blood?"], normalize_embeddings=True)
    assert np.allclose(query, want, atol=1e-5)
    assert batch.shape == (16, emb.dimensions)


BATCHES = 40  # of 4 short texts; before the fix, about one in five failed
CHUNKING_THREADS = 2
Split = tuple[int, list[Chunk]]


def _document(i: int) -> str:
    """Sentences of different lengths, so model batches need padding."""
    return " ".join(
        f"Sentence {j} of document {i} says protein {i * j % 97} binds receptor "
        f"{'x' * ((i + j) % 9)}{' and more' * ((i * j) % 5)}."
        for j in range(4 + (i * 7) % 9)
    )


def test_chunking_while_embedding_keeps_batches_padded_and_counts_exact() -> None:
    """Ingestion chunks on worker threads (`asyncio.to_thread(chunker.split)`) while the model
    thread embeds other documents' chunks: every batch still embeds, to the vectors of a quiet
    run, and every document still splits into the chunks of a quiet run."""
    emb = sentence_transformer_embedder(settings(embedding_batch_size=16))
    chunker = Chunker(emb.count_tokens, max_tokens=48, overlap=12)
    documents = [_document(i) for i in range(BATCHES)]
    batches = [d.split(". ")[:4] for d in documents]
    quiet_chunks = [chunker.split(d) for d in documents]

    async def scenario() -> tuple[list[Vectors], list[Vectors | BaseException], list[Split]]:
        everything = await emb.embed([t for b in batches for t in b])
        ends = np.cumsum([len(b) for b in batches])
        quiet = np.split(everything, ends[:-1])
        done = asyncio.Event()
        split: list[Split] = []

        async def chunking(start: int) -> None:
            i = start
            while not done.is_set():
                n = i % len(documents)
                split.append((n, await asyncio.to_thread(chunker.split, documents[n])))
                i += 1

        async def embedding() -> list[Vectors | BaseException]:
            out: list[Vectors | BaseException] = []
            try:
                for batch in batches:
                    try:
                        out.append(await emb.embed(batch))
                    except Exception as exc:
                        out.append(exc)
            finally:
                done.set()
            return out

        try:
            raced, *_ = await asyncio.gather(
                embedding(), *(chunking(k * 7) for k in range(CHUNKING_THREADS))
            )
        finally:
            await emb.close()
        return quiet, raced, split

    quiet, raced, split = asyncio.run(scenario())
    failed = [v for v in raced if isinstance(v, BaseException)]
    assert not failed, f"{len(failed)} of {len(batches)} batches failed, first: {failed[0]!r}"
    for got, want in zip(raced, quiet, strict=True):
        assert isinstance(got, np.ndarray)
        assert np.allclose(got, want, atol=1e-5)
    assert len(split) > len(documents)  # chunking really ran all along
    wrong = [n for n, chunks in split if chunks != quiet_chunks[n]]
    assert not wrong, f"{len(wrong)} of {len(split)} splits differ from a quiet run"
