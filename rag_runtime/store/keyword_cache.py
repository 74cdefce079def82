"""The keyword index cache: each process's in-memory BM25 indexes of the collections it
searches (rag_runtime.keyword_index), loaded once, caught up from the change log, scored
against one snapshot of the term statistics."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

from rag_runtime import keyword
from rag_runtime.db import Database
from rag_runtime.domain import Scored
from rag_runtime.keyword_index import KeywordIndex
from rag_runtime.store.rows import Collection
from rag_runtime.store.sql import TEXT_CONFIG, filter_sql

KEYWORD_INDEXES = 32  # collections whose keyword index is loaded at start (largest first)
KEYWORD_CACHE_BYTES = 512 * 1024 * 1024  # default memory for the keyword indexes of a process
KEYWORD_MAX_DEAD = 0.3  # share of removed chunks an index keeps before it reloads


class KeywordIndexes:
    def __init__(self, db: Database, *, max_bytes: int = KEYWORD_CACHE_BYTES) -> None:
        self.db = db
        self.max_bytes = max_bytes
        self._keyword: dict[int, tuple[KeywordIndex, asyncio.Lock]] = {}

    @property
    def keyword_bytes(self) -> int:
        """Memory the keyword indexes of this process hold."""
        return sum(index.nbytes for index, _ in self._keyword.values())

    def _evict(self, keep: int) -> None:
        """Drop least recently used indexes until they fit `max_bytes` (never `keep`: a
        collection larger than the budget is still searchable, alone)."""
        total = self.keyword_bytes
        for collection_id in list(self._keyword):
            if total <= self.max_bytes:
                break
            if collection_id != keep:
                total -= self._keyword.pop(collection_id)[0].nbytes

    async def search_keyword(
        self,
        collection: Collection,
        text: str,
        *,
        k: int,
        filters: dict[str, Any] | None = None,
    ) -> list[Scored]:
        """Exact BM25 top-k ('english': stemming, stopwords) from the in-memory index.

        The query's term statistics and the index's catch-up read one snapshot, so scores
        are those of exhaustive BM25 over the collection as of that snapshot.
        """
        current = await self._keyword_current(collection.id, text)
        if current is None or not current[1].terms:
            return []
        index, snapshot = current
        terms = [(t.id, t.idf) for t in snapshot.terms]
        if not filters:
            slots, scores = index.ranked(terms, snapshot.avgdl, k)
        else:
            slots, scores = index.ranked(terms, snapshot.avgdl, None)
            keep = await self._filter_slots(index, slots, k, filters)
            slots, scores = slots[keep], scores[keep]
        lexemes = {t.id: t.lexeme for t in snapshot.terms}
        return [
            Scored(
                r.chunk_id,
                r.score,
                {
                    "bm25": round(r.score, 6),
                    "matched_terms": sorted(lexemes[t] for t in r.term_ids),
                },
            )
            for r in index.describe(slots, scores, terms)
        ]

    async def _keyword_current(
        self, collection_id: int, text: str
    ) -> tuple[KeywordIndex, keyword.Snapshot] | None:
        """The query's statistics and the collection's index, caught up to the same snapshot."""
        index, lock = self._keyword_index(collection_id)
        async with self.db.transaction() as conn:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = await self._keyword_snapshot(conn, collection_id, text)
            if snapshot is None:
                return None
            if index.version < snapshot.version:
                async with lock:  # one catch-up at a time; others find it done
                    index = self._keyword_index(collection_id)[0]
                    if index.version < snapshot.version:
                        index = await self._catch_up(conn, collection_id, index, snapshot)
                        self._keyword[collection_id] = (index, lock)
                        self._evict(keep=collection_id)
        return index, snapshot

    async def warm_keyword_indexes(self) -> int:
        """Load the keyword indexes of the largest collections; how many were loaded."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM collections WHERE chunk_count > 0 "
                "ORDER BY chunk_count DESC LIMIT %s",
                (KEYWORD_INDEXES,),
            )
            ids = [int(r["id"]) for r in await cur.fetchall()]
        for collection_id in reversed(ids):  # the largest ends most recently used
            await self._keyword_current(collection_id, "")
        return len(ids)

    def _keyword_index(self, collection_id: int) -> tuple[KeywordIndex, asyncio.Lock]:
        entry = self._keyword.pop(collection_id, None) or (KeywordIndex(), asyncio.Lock())
        self._keyword[collection_id] = entry  # most recently used last
        return entry

    async def _keyword_snapshot(
        self, conn: psycopg.AsyncConnection[Any], collection_id: int, text: str
    ) -> keyword.Snapshot | None:
        cur = await conn.execute(
            "SELECT c.version, c.removed_since, c.chunk_count, c.total_length, "
            "coalesce(array_agg(t.id) FILTER (WHERE t.id IS NOT NULL), '{}') AS ids, "
            "coalesce(array_agg(t.lexeme) FILTER (WHERE t.id IS NOT NULL), '{}') AS lexemes, "
            "coalesce(array_agg(t.df) FILTER (WHERE t.id IS NOT NULL), '{}') AS dfs "
            "FROM collections c LEFT JOIN term_stats t ON t.collection_id = c.id AND t.df > 0 "
            f"AND t.lexeme IN (SELECT u.lexeme FROM unnest(to_tsvector('{TEXT_CONFIG}', %s)) u) "
            "WHERE c.id = %s GROUP BY c.id",
            (text, collection_id),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        return keyword.snapshot(
            version=int(row["version"]),
            removed_since=int(row["removed_since"]),
            chunks=int(row["chunk_count"]),
            total_length=int(row["total_length"]),
            terms=zip(row["ids"], row["lexemes"], row["dfs"], strict=True),
        )

    async def _catch_up(
        self,
        conn: psycopg.AsyncConnection[Any],
        collection_id: int,
        index: KeywordIndex,
        snapshot: keyword.Snapshot,
    ) -> KeywordIndex:
        """Bring the index to the snapshot's version: changes since its own, or a reload."""
        if index.version < snapshot.removed_since:
            index = KeywordIndex()  # the tombstones it needs are pruned: reload
        since = index.version
        if since < 0:  # a whole collection's postings aggregate in memory, not on disk
            await conn.execute("SET LOCAL work_mem = '256MB'")
        cur = await conn.execute(
            "SELECT coalesce(array_agg(id ORDER BY id), '{}') AS ids, "
            "coalesce(array_agg(length ORDER BY id), '{}') AS lengths FROM chunks "
            "WHERE collection_id = %s AND version > %s",
            (collection_id, since),
        )
        added = await cur.fetchone()
        cur = await conn.execute(
            "SELECT coalesce(array_agg(chunk_id), '{}') AS ids FROM removed_chunks "
            "WHERE collection_id = %s AND version > %s",
            (collection_id, since),
        )
        removed = await cur.fetchone()
        assert added is not None
        assert removed is not None
        packed = await _fetch_postings(conn, collection_id, since)
        # Building an index takes seconds of CPU for a large collection: in a thread, on a
        # copy (searches on the loop keep reading the current one until it is swapped in).
        index = await asyncio.to_thread(
            _applied, index, snapshot.version, added, removed["ids"], packed
        )
        if index.dead_fraction() > KEYWORD_MAX_DEAD:  # mostly removed chunks: start afresh
            return await self._catch_up(conn, collection_id, KeywordIndex(), snapshot)
        return index

    async def _filter_slots(
        self,
        index: KeywordIndex,
        slots: npt.NDArray[np.intp],
        k: int,
        filters: dict[str, Any],
    ) -> npt.NDArray[np.intp]:
        """Positions in `slots` (best first) of the first k chunks that pass the filters."""
        where, params = filter_sql(filters)
        stmt = sql.SQL("SELECT id FROM chunks WHERE id = ANY(%s){}").format(where)
        keep: list[int] = []
        start, step = 0, max(4 * k, 256)
        async with self.db.connection() as conn:
            while start < len(slots) and len(keep) < k:
                batch = slots[start : start + step]
                ids = index.chunk_ids[batch]
                cur = await conn.execute(stmt, [ids.tolist(), *params])
                passed = {r["id"] for r in await cur.fetchall()}
                keep += [start + i for i, cid in enumerate(ids.tolist()) if cid in passed]
                start, step = start + len(batch), step * 4
        return np.asarray(keep[:k], dtype=np.intp)


POSTING_ROW = np.dtype([("chunk", ">i8"), ("term", ">i8"), ("tf", ">i4")])
_POSTINGS_PER_ROW = 1024  # chunks whose postings travel together as one bytea


def _applied(
    index: KeywordIndex,
    version: int,
    added: dict[str, Any],
    removed: list[int],
    packed: bytes,
) -> KeywordIndex:
    """A copy of `index` with the changes applied (the original is left as it was)."""
    fresh = dataclasses.replace(index, alive=index.alive.copy(), segments=list(index.segments))
    postings = parse_postings(packed)
    fresh.apply(
        version,
        chunk_ids=np.asarray(added["ids"], dtype=np.int64),
        lengths=np.asarray(added["lengths"], dtype=np.float64),
        posting_chunks=postings["chunk"].astype(np.int64),
        posting_terms=postings["term"].astype(np.int64),
        posting_tfs=postings["tf"],
        removed=np.asarray(removed, dtype=np.int64),
    )
    return fresh


async def _fetch_postings(
    conn: psycopg.AsyncConnection[Any], collection_id: int, since: int
) -> bytes:
    """Postings of the collection's chunks newer than `since`, packed server-side.

    Rows of (chunk, term, tf) as big-endian binary, a bytea per range of chunk ids: a few
    hundred rows instead of millions, which is what makes loading a large collection quick.
    """
    cur = await conn.execute(
        "SELECT string_agg(int8send(p.chunk_id) || int8send(p.term_id) || int4send(p.tf), "
        "''::bytea) AS rows FROM chunks ch JOIN postings p ON p.chunk_id = ch.id "
        "WHERE ch.collection_id = %s AND ch.version > %s GROUP BY ch.id / %s",
        (collection_id, since, _POSTINGS_PER_ROW),
    )
    return b"".join([r["rows"] for r in await cur.fetchall()])


def parse_postings(data: bytes) -> npt.NDArray[Any]:
    """(chunk, term, tf) rows from the packed form `_fetch_postings` reads."""
    if len(data) % POSTING_ROW.itemsize:
        raise ValueError(
            f"packed postings of {len(data)} bytes are not whole {POSTING_ROW.itemsize}-byte rows"
        )
    return np.frombuffer(data, dtype=POSTING_ROW)
