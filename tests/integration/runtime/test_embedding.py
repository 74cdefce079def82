"""The bundled MiniLM through `BatchingEmbedder`: length-planned batches give the vectors a
plain sentence-transformers `encode` gives (normalized), for texts of very different lengths
arriving from concurrent callers."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from rag_runtime.embedding import (
    bundled_model_path,
    load_sentence_transformer,
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
    model = load_sentence_transformer(bundled_model_path())
    want = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
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
    model = load_sentence_transformer(bundled_model_path())
    want = model.encode(["does aspirin thin the blood?"], normalize_embeddings=True)
    assert np.allclose(query, want, atol=1e-5)
    assert batch.shape == (16, emb.dimensions)
