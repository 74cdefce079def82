"""Concurrent writes to one collection queue in process, not on its row lock in Postgres.

Many ingestion jobs finishing at once all write to the same collection row. If each waited
for the row lock inside its own transaction, every job in flight would hold a pooled
connection; queued in process, one connection per collection is busy. Watched here from
`pg_stat_activity`: no backend of the writing pool ever waits on a lock, and every write
lands with the right statistics.
"""

from __future__ import annotations

import asyncio

import numpy as np
import psycopg
import pytest

from rag_runtime import migrate
from rag_runtime.chunking import Chunk
from rag_runtime.db import Database
from rag_runtime.store import Store

pytestmark = pytest.mark.integration

WRITERS = 24


def test_writers_of_one_collection_take_turns_in_process(database_url: str) -> None:
    migrate.upgrade(database_url)

    async def scenario() -> tuple[int, int]:
        db = Database(database_url, min_size=1, max_size=WRITERS + 2)
        await db.open()
        store = Store(db)
        try:
            collection = await store.create_collection(
                "turns", description="", model="m", dimensions=4
            )
            docs = [
                (
                    await store.create_document(
                        collection,
                        content=f"doc {i}",
                        title=str(i),
                        source=None,
                        content_type="text/plain",
                        metadata={},
                    )
                )[0]
                for i in range(WRITERS)
            ]
            text = " ".join(f"word{j}" for j in range(300))
            chunks = [Chunk(o, f"{text} {o}", 0) for o in range(8)]
            vectors = np.ones((len(chunks), 4), dtype=np.float32) / 2
            waits = 0
            done = asyncio.Event()

            async def watch() -> None:
                nonlocal waits
                with psycopg.connect(database_url, autocommit=True) as conn:
                    while not done.is_set():
                        row = conn.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND wait_event_type = 'Lock'"
                        ).fetchone()
                        waits = max(waits, row[0] if row else 0)
                        await asyncio.sleep(0.005)

            watcher = asyncio.create_task(watch())
            await asyncio.gather(*(store.write_chunks(d, chunks, vectors) for d in docs))
            done.set()
            await watcher
            final = await store.get_collection("turns")
            return waits, final.chunk_count
        finally:
            await db.close()

    waits, chunk_count = asyncio.run(scenario())
    assert waits == 0
    assert chunk_count == WRITERS * 8


@pytest.mark.parametrize("writer", ["write_chunks", "delete_document"])
def test_a_writer_and_a_collection_delete_never_deadlock(database_url: str, writer: str) -> None:
    """A writer is held inside its transaction, as far as its version bump; meanwhile the
    collection is deleted. The delete waits for the writer (both lock the collection row
    first) instead of each waiting for the other, which Postgres ends by failing one."""
    migrate.upgrade(database_url)

    async def scenario() -> tuple[object, object]:
        db = Database(database_url, min_size=1, max_size=4)
        await db.open()
        store = Store(db)
        try:
            collection = await store.create_collection(
                f"deadlock-{writer.replace('_', '-')}", description="", model="m", dimensions=4
            )
            doc = (
                await store.create_document(
                    collection,
                    content="text",
                    title="t",
                    source=None,
                    content_type="text/plain",
                    metadata={},
                )
            )[0]
            chunks = [Chunk(0, "some words", 0)]
            vectors = np.ones((1, 4), dtype=np.float32) / 2
            await store.write_chunks(doc, chunks, vectors)
            inside, release = asyncio.Event(), asyncio.Event()
            bump = store._bump_version

            async def held_bump(conn: psycopg.AsyncConnection[object], collection_id: int) -> int:
                inside.set()
                await release.wait()
                return await bump(conn, collection_id)

            store._bump_version = held_bump  # type: ignore[method-assign]
            if writer == "write_chunks":
                work = asyncio.create_task(store.write_chunks(doc, chunks, vectors))
            else:
                work = asyncio.create_task(store.delete_document(collection, doc.id))
            await asyncio.wait_for(inside.wait(), 30)
            store._bump_version = bump  # type: ignore[method-assign]
            delete = asyncio.create_task(store.delete_collection(collection.name))
            with psycopg.connect(database_url, autocommit=True) as conn:
                for _ in range(3000):  # until the delete waits on a lock (30 s at most)
                    row = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND wait_event_type = 'Lock' "
                        "AND query LIKE 'DELETE FROM collections%%'"
                    ).fetchone()
                    if row and row[0]:
                        break
                    await asyncio.sleep(0.01)
                else:
                    pytest.fail("the collection delete never waited for the writer")
            release.set()
            results = await asyncio.gather(work, delete, return_exceptions=True)
            return results[0], results[1]
        finally:
            await db.close()

    written, deleted = asyncio.run(scenario())
    assert not isinstance(written, BaseException), written
    assert not isinstance(deleted, BaseException), deleted
