"""Ingestion: chunk, embed, store (and index in the graph) one document; the queues that run it.

With Redis configured, jobs go to the arq queue and `rag-runtime worker` runs them. Without,
an in-process queue runs them in the API. Either way the document row is the source of truth:
documents still `queued` or `processing` are swept back into the queue, so a job survives a
dead worker or a database outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Protocol

from rag_runtime import tasks
from rag_runtime.cache import Cache
from rag_runtime.chunking import Chunker
from rag_runtime.embedding import Embedder
from rag_runtime.errors import (
    EmbeddingMismatchError,
    InvalidInputError,
    ServiceUnavailableError,
)
from rag_runtime.graph import GraphChunk, GraphStore
from rag_runtime.metrics import Metrics
from rag_runtime.retrieval import check_embedding_compatible
from rag_runtime.store import Store

log = logging.getLogger(__name__)

JOB_NAME = "ingest_document"
INTERNAL_ERROR = "internal error while ingesting the document (details in the runtime's log)"


class Ingestor:
    def __init__(
        self,
        *,
        store: Store,
        embedder: Embedder,
        chunker: Chunker,
        graph: GraphStore | None,
        cache: Cache,
        metrics: Metrics,
        max_attempts: int = 10,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.graph = graph
        self.cache = cache
        self.metrics = metrics
        self.max_attempts = max_attempts

    async def process(self, document_id: uuid.UUID) -> str:
        """Ingest one document: 'ready', 'failed' (permanent, recorded) or 'skipped'.

        Raises ServiceUnavailableError when a dependency is down; the caller retries later.
        """
        start = time.perf_counter()
        claimed = await self.store.claim_document(document_id, max_attempts=self.max_attempts)
        if claimed is None:
            return "skipped"
        doc, collection = claimed
        try:
            check_embedding_compatible(collection, self.embedder)
            chunks = await asyncio.to_thread(self.chunker.split, doc.content or "")
            if not chunks:
                raise InvalidInputError("document has no text to index")
            vectors = await self.embedder.embed([c.text for c in chunks])
            ids = await self.store.write_chunks(doc, chunks, vectors, ready=self.graph is None)
        except (EmbeddingMismatchError, InvalidInputError) as exc:
            await self.store.set_status(document_id, "failed", exc.message)
            self.metrics.ingested.labels("failed").inc()
            return "failed"
        except ServiceUnavailableError as exc:
            with contextlib.suppress(ServiceUnavailableError):  # retried until out of attempts
                await self.store.set_status(document_id, "queued", exc.message)
            self.metrics.ingested.labels("retried").inc()
            raise
        except Exception:
            # The document says what failed in words it may show; the details go to the log.
            log.exception("ingestion of %s failed", document_id)
            with contextlib.suppress(ServiceUnavailableError):
                await self.store.set_status(document_id, "failed", INTERNAL_ERROR)
            self.metrics.ingested.labels("failed").inc()
            return "failed"
        if ids is None:
            return "skipped"
        if self.graph is not None:
            # Ready only once every strategy, the graph included, can find it.
            await self._index_graph(
                collection.id,
                document_id,
                [GraphChunk(i, c.ordinal, c.text) for i, c in zip(ids, chunks, strict=True)],
            )
            await self.store.set_status(document_id, "ready")
            await self.store.bump_version(collection.id)  # graph results change with it
        self.metrics.ingested.labels("ready").inc()
        self.metrics.ingestion_seconds.observe(time.perf_counter() - start)
        return "ready"

    async def _index_graph(
        self, collection_id: int, document_id: uuid.UUID, chunks: list[GraphChunk]
    ) -> None:
        assert self.graph is not None
        try:
            await self.graph.index_document(collection_id, document_id, chunks)
            if not await self.store.existing_documents([document_id]):
                # Deleted while it was being indexed: the delete found no nodes to remove.
                await self.graph.delete_document(document_id)
        except ServiceUnavailableError as exc:
            # The graph is optional: the document is searchable by every other strategy;
            # nodes left behind by a delete are removed by the graph sweep.
            log.warning("graph indexing of %s skipped: %s", document_id, exc.log_text)


class IngestQueue(Protocol):
    kind: str

    async def enqueue(self, document_id: uuid.UUID) -> None: ...

    async def depth(self) -> int: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def backoff_s(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    return float(min(cap, base * 2 ** max(0, attempt - 1)))


class InlineQueue:
    """In-process queue for running without Redis; retries with backoff until it succeeds."""

    kind = "inline"

    def __init__(self, ingestor: Ingestor, *, concurrency: int, sweep_s: float = 30.0) -> None:
        self.ingestor = ingestor
        self.concurrency = concurrency
        self.sweep_s = sweep_s
        self._queue: asyncio.Queue[uuid.UUID] = asyncio.Queue()
        self._queued: set[uuid.UUID] = set()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]
        self._tasks.append(asyncio.create_task(self._sweep()))

    async def enqueue(self, document_id: uuid.UUID) -> None:
        if document_id not in self._queued:
            self._queued.add(document_id)
            self._queue.put_nowait(document_id)

    async def depth(self) -> int:
        return self._queue.qsize()

    async def ping(self) -> None:
        return None

    async def join(self) -> None:
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            document_id = await self._queue.get()
            try:
                attempt = 0
                while True:
                    attempt += 1
                    try:
                        await self.ingestor.process(document_id)
                        break
                    except ServiceUnavailableError as exc:
                        delay = backoff_s(attempt)
                        log.warning(
                            "ingest %s: %s; retry in %.1fs", document_id, exc.log_text, delay
                        )
                        await asyncio.sleep(delay)
            except Exception:
                log.exception("ingest %s crashed", document_id)
            finally:
                self._queued.discard(document_id)
                self._queue.task_done()

    async def _sweep(self) -> None:
        """Re-queue documents left queued by an earlier process (or a failed enqueue)."""
        first = True
        while True:
            try:
                for document_id in await self.ingestor.store.pending_documents(
                    older_than_s=0 if first else self.sweep_s,
                    max_attempts=self.ingestor.max_attempts,
                ):
                    await self.enqueue(document_id)
                first = False
            except ServiceUnavailableError:
                pass
            await asyncio.sleep(self.sweep_s)

    async def close(self) -> None:
        await tasks.stop(*self._tasks)
        self._tasks = []


class RedisQueue:
    """arq queue on Redis; `rag-runtime worker` consumes it."""

    kind = "redis"

    def __init__(self, pool: object, queue_name: str) -> None:
        from arq.connections import ArqRedis

        assert isinstance(pool, ArqRedis)
        self.pool = pool
        self.queue_name = queue_name

    @classmethod
    async def connect(cls, redis_url: str, queue_name: str) -> RedisQueue:
        """Connects lazily: a Redis that is down now only fails enqueues until it is back."""
        from arq.connections import ArqRedis
        from redis.asyncio import ConnectionPool

        connections = ConnectionPool.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        pool = ArqRedis(connection_pool=connections, default_queue_name=queue_name)
        return cls(pool, queue_name)

    async def enqueue(self, document_id: uuid.UUID) -> None:
        from redis.exceptions import RedisError

        try:
            await self.pool.enqueue_job(
                JOB_NAME,
                str(document_id),
                _job_id=f"ingest:{document_id}",
                _queue_name=self.queue_name,
            )
        except (RedisError, OSError) as exc:
            raise ServiceUnavailableError("ingestion queue unavailable", cause=exc) from exc

    async def depth(self) -> int:
        return int(await self.pool.zcard(self.queue_name))

    async def ping(self) -> None:
        from redis.exceptions import RedisError

        try:
            await self.pool.ping()
        except (RedisError, OSError) as exc:
            raise ServiceUnavailableError("ingestion queue unavailable", cause=exc) from exc

    async def close(self) -> None:
        await self.pool.aclose()
