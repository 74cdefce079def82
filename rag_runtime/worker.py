"""`rag-runtime worker`: runs ingestion jobs from the Redis queue (arq).

Jobs are at-least-once: arq keeps a job in the queue until it finishes, so a job whose worker
died is picked up again once its in-progress marker expires (job timeout + 10 s). A database
or embedding outage raises `Retry` with exponential backoff; documents still pending after
that are swept back into the queue every `SWEEP_S` seconds. With RAG_METRICS_PORT set, the
worker serves `/health`, `/ready` (queue and database reachable, the schema one it serves) and
`/metrics` there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import psycopg
from arq import Retry
from arq.worker import Worker, func
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rag_runtime import tasks
from rag_runtime.embedding import sleeping_compute_threads
from rag_runtime.errors import ServiceUnavailableError
from rag_runtime.ingest import JOB_NAME, RedisQueue, backoff_s
from rag_runtime.runtime import Runtime
from rag_runtime.settings import Settings
from rag_runtime.worker_http import Check, WorkerHttp

log = logging.getLogger(__name__)
SWEEP_S = 30.0
QUEUE_RETRY_S = 1.0


async def ingest_document(ctx: dict[str, Any], document_id: str) -> str:
    runtime: Runtime = ctx["runtime"]
    try:
        return await runtime.ingestor.process(uuid.UUID(document_id))
    except ServiceUnavailableError as exc:
        delay = backoff_s(int(ctx.get("job_try", 1)), base=1.0, cap=60.0)
        log.warning("document %s: %s; retrying in %.0fs", document_id, exc.log_text, delay)
        raise Retry(defer=delay) from exc


async def _sweep_forever(runtime: Runtime, queue: RedisQueue) -> None:
    stale_after = runtime.settings.job_timeout_seconds + 30
    first = True
    while True:
        try:
            pending = await runtime.store.pending_documents(
                older_than_s=0 if first else stale_after,
                max_attempts=runtime.settings.document_max_attempts,
            )
            for document_id in pending:
                await queue.enqueue(document_id)
            first = False
        except ServiceUnavailableError as exc:
            log.warning("sweep skipped: %s", exc.log_text)
        except psycopg.errors.UndefinedTable:  # a first install: the migration Job runs
            log.info("sweep skipped: the schema is not there yet")
        with contextlib.suppress(Exception):
            runtime.metrics.queue_depth.set(await queue.depth())
        await asyncio.sleep(SWEEP_S)


class IngestWorker(Worker):
    """arq's worker, minus the Redis round trips it spends on jobs it is running itself.

    A job stays in the queue until it finishes, so every poll reads this worker's own running
    jobs again, and arq checks each one in Redis (WATCH, EXISTS, ZSCORE) before skipping it:
    with `worker_concurrency` jobs in flight and polls every 100 ms that was a large share of
    the worker's event-loop time. A job with a live task here is in progress by definition.
    """

    queue_down = False

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        running = {job_id for job_id, task in self.tasks.items() if not task.done()}
        await super().start_jobs([j for j in job_ids if j.decode() not in running])

    async def _poll_iteration(self) -> None:
        """One poll; while Redis is unreachable the worker waits (and says not ready) instead
        of exiting, and polls again once it is back. Running jobs keep running."""
        try:
            await super()._poll_iteration()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            if not self.queue_down:
                log.warning("queue unreachable (%s); waiting for Redis", exc)
            self.queue_down = True
            await asyncio.sleep(QUEUE_RETRY_S)
            return
        if self.queue_down:
            log.info("queue reachable again")
            self.queue_down = False


def build_worker(
    settings: Settings,
    runtime: Runtime,
    queue: RedisQueue,
    *,
    burst: bool = False,
    handle_signals: bool = True,
) -> Worker:
    return IngestWorker(
        functions=[
            func(
                ingest_document,
                name=JOB_NAME,
                max_tries=settings.job_max_tries,
                timeout=settings.job_timeout_seconds,
            )
        ],
        redis_pool=queue.pool,
        queue_name=settings.queue_name,
        max_jobs=settings.worker_concurrency,
        job_timeout=settings.job_timeout_seconds,
        keep_result=0,
        poll_delay=0.1,
        max_tries=settings.job_max_tries,
        ctx={"runtime": runtime},
        burst=burst,
        handle_signals=handle_signals and not burst,
    )


async def run_worker(
    settings: Settings, *, burst: bool = False, handle_signals: bool = True
) -> None:
    if not settings.redis_url:
        raise SystemExit("rag-runtime worker needs RAG_REDIS_URL (without Redis the API ingests)")
    sleeping_compute_threads()  # before the model (and torch) loads
    runtime = await Runtime.start(settings, role="worker")
    queue = await RedisQueue.connect(settings.redis_url, settings.queue_name)
    checks: dict[str, Check] = {
        "queue": queue.ping,
        "database": runtime.db.ping,
        "schema": runtime.require_schema,
    }
    http = WorkerHttp(runtime.metrics.registry, checks)
    if settings.metrics_port:
        await http.start(settings.host, settings.metrics_port)
    sweeper = asyncio.create_task(_sweep_forever(runtime, queue))
    worker = build_worker(settings, runtime, queue, burst=burst, handle_signals=handle_signals)
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        log.info("worker stopping")
    finally:
        await http.close()
        await tasks.stop(sweeper)
        await worker.close()
        await runtime.close()
