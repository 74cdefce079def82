"""The runtime's parts, wired from settings: what the API, the worker and the CLI share."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from redis.asyncio import Redis

from rag_runtime import migrate, tasks
from rag_runtime.cache import Cache, RateLimiter
from rag_runtime.chunking import Chunker
from rag_runtime.db import Database, start_embedded_postgres
from rag_runtime.embedding import Embedder, build_embedder
from rag_runtime.errors import RagError, ServiceUnavailableError, first_line
from rag_runtime.extract import Parser
from rag_runtime.generation import Generator, build_generator
from rag_runtime.graph import GraphStore, Scope
from rag_runtime.ingest import Ingestor, IngestQueue, InlineQueue, RedisQueue
from rag_runtime.metrics import Metrics
from rag_runtime.retrieval import Retriever
from rag_runtime.settings import Settings
from rag_runtime.store import Store

log = logging.getLogger(__name__)
MAX_POOL = 12  # Postgres connections per process at most

Role = Literal["api", "worker", "cli"]


def migrates_at_start(settings: Settings, role: Role) -> bool:
    """Whether a process of `role` applies migrations before it serves.

    The API and the local CLI do unless `RAG_MIGRATE_ON_START=false` (operator-managed pods,
    whose schema a migration Job moves); the worker never does.
    """
    return settings.migrate_on_start and role != "worker"


def resolve_database_url(settings: Settings) -> tuple[str, Any]:
    """The database URL, starting the embedded Postgres (returned as a handle) if none is set."""
    if settings.database_url:
        return settings.database_url, None
    log.info("no RAG_DATABASE_URL: starting embedded Postgres in %s", settings.data_dir)
    return start_embedded_postgres(settings.data_dir)


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    db: Database
    store: Store
    embedder: Embedder
    chunker: Chunker
    metrics: Metrics
    cache: Cache
    limiter: RateLimiter
    auth_failures: RateLimiter
    retriever: Retriever
    ingestor: Ingestor
    generator: Generator
    redis: Redis | None = None
    graph: GraphStore | None = None
    queue: IngestQueue | None = None
    schema_current: bool = False
    parser: Parser = field(default_factory=Parser)
    embedded_postgres: Any = None
    _schema_checked: float = field(default=0.0, repr=False)
    _warm_up: asyncio.Task[None] | None = field(default=None, repr=False)
    _graph_sweep: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    async def start(cls, settings: Settings, *, role: Role = "api") -> Runtime:
        url, embedded = await asyncio.to_thread(resolve_database_url, settings)
        schema_current = await _migrate_at_start(settings, role, url)
        # Jobs hold a connection only per statement (writes to one collection queue in
        # process first), so the pool need not grow with the jobs in flight.
        db = Database(url, max_size=max(4, min(settings.worker_concurrency + 2, MAX_POOL)))
        await db.open()
        metrics = Metrics()
        embedder = await asyncio.to_thread(build_embedder, settings)
        chunk_tokens = settings.chunk_tokens or max(16, embedder.max_tokens - 2)
        chunker = Chunker(
            embedder.count_tokens, max_tokens=chunk_tokens, overlap=settings.chunk_overlap_tokens
        )
        store = Store(db, keyword_cache_bytes=settings.keyword_cache_bytes)
        redis, graph = _redis_client(settings), _graph_store(settings, store.graph_scope)
        cache = Cache(redis, settings.cache_ttl_seconds)
        ingestor = Ingestor(
            store=store,
            embedder=embedder,
            chunker=chunker,
            graph=graph,
            cache=cache,
            metrics=metrics,
            max_attempts=settings.document_max_attempts,
        )
        rt = cls(
            settings=settings,
            database_url=url,
            db=db,
            store=store,
            embedder=embedder,
            chunker=chunker,
            metrics=metrics,
            cache=cache,
            limiter=RateLimiter(redis, settings.rate_limit_per_minute),
            auth_failures=RateLimiter(redis, settings.auth_failures_per_minute, kind="af"),
            retriever=Retriever(
                settings=settings,
                store=store,
                embedder=embedder,
                cache=cache,
                graph=graph,
                metrics=metrics,
            ),
            ingestor=ingestor,
            generator=build_generator(settings),
            redis=redis,
            graph=graph,
            schema_current=schema_current,
            embedded_postgres=embedded,
        )
        if role == "api":  # the worker consumes Redis; the CLI ingests what it is given
            await rt._start_api_tasks()
        return rt

    async def _start_api_tasks(self) -> None:
        """The API's queue, keyword-index warm-up, parser process and graph sweep."""
        self.queue = await self._make_queue()
        self._warm_up = asyncio.create_task(self._warm_keyword_indexes())
        self.parser.start()
        if self.graph is not None:
            self._graph_sweep = asyncio.create_task(self._sweep_graph_forever())

    async def _warm_keyword_indexes(self) -> None:
        """Load keyword indexes in the background so first searches do not wait for them."""
        try:
            start = time.perf_counter()
            loaded = await self.store.warm_keyword_indexes()
            log.info(
                "keyword indexes of %d collections loaded in %.1fs",
                loaded,
                time.perf_counter() - start,
            )
        except Exception as exc:  # database down, schema not migrated: searches load them later
            log.warning("keyword indexes not preloaded: %s", _first(exc))

    async def sweep_graph(self) -> int:
        """Remove graph nodes whose collection or document Postgres no longer has (a delete
        that failed in Neo4j, or one that raced an ingestion); how many went. Only this
        database's scope is listed: other databases' graphs in the same Neo4j are not ours.

        The graph is listed before Postgres is read: whatever the graph names was created in
        Postgres first, so what Postgres lacks afterwards was deleted, not not yet created.
        """
        assert self.graph is not None
        removed = 0
        graph_collections = await self.graph.collection_ids()
        live = await self.store.collection_ids()
        for collection_id in sorted(graph_collections - live):
            removed += await self.graph.delete_collection(collection_id)
        for collection_id in sorted(graph_collections & live):
            after = ""
            while page := await self.graph.document_ids(collection_id, after=after, limit=1000):
                ids = [uuid.UUID(d) for d in page]
                for gone in set(ids) - await self.store.existing_documents(ids):
                    await self.graph.delete_document(gone)
                    removed += 1
                after = page[-1]
        return removed

    async def _sweep_graph_forever(self) -> None:
        while True:
            try:
                removed = await self.sweep_graph()
                if removed:
                    log.info("graph sweep removed %d nodes of deleted data", removed)
            except ServiceUnavailableError as exc:
                log.warning("graph sweep skipped: %s", exc.log_text)
            await asyncio.sleep(self.settings.graph_sweep_seconds)

    async def _make_queue(self) -> IngestQueue:
        s = self.settings
        if s.redis_url:
            return await RedisQueue.connect(s.redis_url, s.queue_name)
        queue = InlineQueue(self.ingestor, concurrency=s.worker_concurrency)
        await queue.start()
        return queue

    async def close(self) -> None:
        await tasks.stop(self._warm_up, self._graph_sweep)
        self.parser.close()
        if self.queue is not None:
            await self.queue.close()
        await self.generator.close()
        await self.embedder.close()
        if self.graph is not None:
            await self.graph.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.close()
        if self.embedded_postgres is not None:
            await asyncio.to_thread(self.embedded_postgres.cleanup)

    async def schema_status(self) -> migrate.SchemaStatus:
        """The database's schema as this runtime sees it (recorded in `schema_current`)."""
        status = await asyncio.to_thread(migrate.schema_status, self.database_url)
        self.schema_current = status.servable
        return status

    async def require_schema(self) -> None:
        """Raise, saying why, unless the database's schema is one this runtime serves (the
        worker's readiness: on a first install its pods start before the migration Job)."""
        status = await self.schema_status()
        if not status.servable:
            raise RagError(status.message)

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Per-dependency status; False when a required one (database, schema, model) is down.

        The answer is public (probes call it without a key): states only. Why a dependency
        is down (hosts, users, driver errors) goes to the log.
        """
        checks: dict[str, Any] = {}
        ok = True
        try:
            await asyncio.wait_for(self.db.ping(), 5)
            checks["database"] = {"status": "up", "required": True}
        except (ServiceUnavailableError, TimeoutError) as exc:
            _log_down("database", exc)
            checks["database"] = {"status": "down", "required": True}
            ok = False
        try:
            status = await asyncio.wait_for(self.schema_status(), 5)
            checks["schema"] = {
                "status": "up" if status.servable else status.state.value,
                "required": True,
                "state": status.state.value,
                "current": status.current,
                "head": status.head,
            }
            if status.ahead:
                checks["schema"]["ahead"] = list(status.ahead)
            if not status.servable:
                checks["schema"]["reason"] = status.message
            ok = ok and status.servable
        except Exception as exc:
            _log_down("schema", exc)
            checks["schema"] = {"status": "unknown", "required": True}
            ok = False
        checks["cache"] = await self._check_redis("cache")
        if self.queue is None or self.queue.kind == "redis":
            checks["queue"] = await self._check_queue()
        else:
            checks["queue"] = {"status": "up", "required": False, "kind": "inline"}
        if self.graph is None:
            checks["graph"] = {"status": "disabled", "required": False}
        else:
            try:
                await asyncio.wait_for(self.graph.ping(), 5)
                checks["graph"] = {"status": "up", "required": False}
            except (ServiceUnavailableError, TimeoutError) as exc:
                _log_down("graph", exc)
                checks["graph"] = {"status": "down", "required": False}
        checks["embedding_model"] = {
            "status": "up",
            "required": True,
            "model": self.embedder.model_name,
            "dimensions": self.embedder.dimensions,
        }
        return ok, checks

    async def _check_redis(self, name: str) -> dict[str, Any]:
        if self.redis is None:
            return {"status": "disabled", "required": False}
        try:
            await asyncio.wait_for(self.redis.ping(), 3)
            return {"status": "up", "required": False}
        except Exception as exc:
            _log_down(name, exc)
            return {"status": "down", "required": False}

    async def _check_queue(self) -> dict[str, Any]:
        if self.queue is None:
            return {"status": "disabled", "required": False}
        try:
            await asyncio.wait_for(self.queue.ping(), 3)
            return {"status": "up", "required": False, "kind": self.queue.kind}
        except Exception as exc:
            _log_down("queue", exc)
            return {"status": "down", "required": False, "kind": "redis"}

    async def refresh_gauges(self) -> None:
        """Update the gauges that are read from the stores (called at scrape time)."""
        try:
            counts = await asyncio.wait_for(self.store.counts(), 3)
            for status in ("queued", "processing", "ready", "failed"):
                self.metrics.documents.labels(status).set(counts["documents"].get(status, 0))
            self.metrics.chunks.set(counts["chunks"])
        except (ServiceUnavailableError, TimeoutError):
            pass
        if self.queue is not None:
            with contextlib.suppress(Exception):
                self.metrics.queue_depth.set(await asyncio.wait_for(self.queue.depth(), 3))


def _first(exc: BaseException) -> str:
    return exc.log_text if isinstance(exc, RagError) else first_line(exc)


def _log_down(name: str, exc: BaseException) -> None:
    log.warning("readiness: %s down: %s", name, _first(exc))


async def _migrate_at_start(settings: Settings, role: Role, url: str) -> bool:
    """Migrate when this process should (see `migrates_at_start`); whether the schema serves."""
    if not migrates_at_start(settings, role):
        return False
    try:
        status = await asyncio.to_thread(migrate.upgrade, url)
    except Exception as exc:  # the API still starts; /ready reports the database
        log.error("migration failed: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return False
    return status.servable


def _redis_client(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    client: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    return client


def _graph_store(settings: Settings, scope: Scope) -> GraphStore | None:
    """The graph, within the database's `scope`, when a Neo4j is configured."""
    if not settings.neo4j_uri:
        return None
    password = settings.neo4j_password.get_secret_value() if settings.neo4j_password else ""
    return GraphStore(
        settings.neo4j_uri, settings.neo4j_user, password, scope, settings.neo4j_retry_seconds
    )
