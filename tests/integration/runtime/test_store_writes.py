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
