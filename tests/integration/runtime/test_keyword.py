"""Keyword search equals exhaustive BM25 on real Postgres, and its index keeps up with writes.

A corpus with a Zipf-like vocabulary (a few very common words, many rare ones) goes in through
`Store.write_chunks`. For many queries, `Store.search_keyword` must return the same chunks and
scores as BM25 computed here in Python from Postgres' own lexemes (`to_tsvector('english')`)
over every chunk, with and without metadata filters. Another `Store` (another API process)
with an index already loaded must see documents added, re-ingested and deleted through the
first one, by catching up on the change log rather than reloading.
"""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections import Counter
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

from rag_runtime import keyword, migrate
from rag_runtime.chunking import Chunk
from rag_runtime.db import Database
from rag_runtime.keyword_index import TIE_DECIMALS
from rag_runtime.store import Collection, Store

pytestmark = pytest.mark.integration

COMMON = ["protein", "cell", "gene", "cancer", "patient"]
RARE = [f"{a}{b}ase" for a in "bcdfghjklm" for b in "aeiou"]  # 50 enzyme-like names


def corpus(seed: int = 7, chunks: int = 400) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(chunks):
        words = [rng.choice(COMMON) for _ in range(rng.randint(3, 30))]
        words += [rng.choice(RARE) for _ in range(rng.randint(0, 4))]
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


def queries(seed: int = 11, n: int = 60) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.sample(RARE, rng.randint(0, 3)) + rng.sample(COMMON, rng.randint(1, 4))
        out.append(" ".join(words))
    return [*out, "cell", "zzzunknown", "cell zzzunknown"]


@pytest.fixture(scope="module")
def loaded(database_url: str) -> Iterator[tuple[Store, Collection]]:
    migrate.upgrade(database_url)

    async def setup() -> tuple[Store, Collection, Database]:
        db = Database(database_url)
        await db.open()
        store = Store(db)
        collection = await store.create_collection(
            f"kw-{uuid.uuid4().hex[:6]}", description="", model="m", dimensions=4
        )
        texts = corpus()
        for lo in range(0, len(texts), 50):
            part = texts[lo : lo + 50]
            doc, _ = await store.create_document(
                collection,
                content="\n".join(part),
                title=str(lo),
                source=None,
                content_type="text/plain",
                metadata={"half": lo < len(texts) // 2},
            )
            vectors = np.ones((len(part), 4), dtype=np.float32) / 2
            await store.write_chunks(doc, [Chunk(i, t, 0) for i, t in enumerate(part)], vectors)
        return store, await store.get_collection(collection.name), db

    loop = asyncio.new_event_loop()
    store, collection, db = loop.run_until_complete(setup())
    store._test_loop = loop  # type: ignore[attr-defined]
    yield store, collection
    loop.run_until_complete(db.close())
    loop.close()


def reference(
    url: str, collection: Collection, text: str, k: int, half: bool | None = None
) -> list[tuple[int, float]]:
    """Exhaustive BM25 over every chunk of the collection, from Postgres' lexemes."""
    with psycopg.connect(url) as conn:
        query = {
            r[0]
            for r in conn.execute(
                "SELECT u.lexeme FROM unnest(to_tsvector('english', %s)) u", (text,)
            )
        }
        rows = conn.execute(
            "SELECT ch.id, (ch.metadata->>'half')::bool, u.lexeme, cardinality(u.positions) "
            "FROM chunks ch, unnest(ch.tsv) u WHERE ch.collection_id = %s",
            (collection.id,),
        ).fetchall()
    tf: dict[int, Counter[str]] = {}
    halves: dict[int, bool] = {}
    for cid, h, lexeme, count in rows:
        tf.setdefault(cid, Counter())[lexeme] = count
        halves[cid] = h
    lengths = {cid: sum(c.values()) for cid, c in tf.items()}
    n = len(tf)
    avgdl = sum(lengths.values()) / n
    df = Counter(lex for c in tf.values() for lex in c)
    scores = []
    for cid, counts in tf.items():
        if half is not None and halves[cid] != half:
            continue
        matched = query & counts.keys()
        if not matched:
            continue
        score = sum(
            keyword.term_score(
                idf=keyword.idf(n, df[t]), tf=counts[t], length=lengths[cid], avgdl=avgdl
            )
            for t in matched
        )
        scores.append((cid, score))
    scores.sort(key=lambda s: (-round(s[1], TIE_DECIMALS), s[0]))
    return scores[:k]


def run(store: Store, coro: object) -> object:
    return store._test_loop.run_until_complete(coro)  # type: ignore[attr-defined]


@pytest.mark.parametrize("k", [1, 5, 10, 50])
def test_top_k_equals_exhaustive_bm25(
    loaded: tuple[Store, Collection], database_url: str, k: int
) -> None:
    store, collection = loaded
    for text in queries():
        got = run(store, store.search_keyword(collection, text, k=k))
        want = reference(database_url, collection, text, k)
        assert [h.chunk_id for h in got] == [cid for cid, _ in want], text  # type: ignore[attr-defined]
        for hit, (_, score) in zip(got, want, strict=True):  # type: ignore[call-overload]
            assert math.isclose(hit.score, score, rel_tol=1e-9), text


def test_filtered_top_k_equals_exhaustive_bm25(
    loaded: tuple[Store, Collection], database_url: str
) -> None:
    store, collection = loaded
    for text in queries()[:20]:
        got = run(store, store.search_keyword(collection, text, k=10, filters={"half": False}))
        want = reference(database_url, collection, text, 10, half=False)
        assert [h.chunk_id for h in got] == [cid for cid, _ in want], text  # type: ignore[attr-defined]


def test_deleting_a_document_removes_its_postings(
    loaded: tuple[Store, Collection], database_url: str
) -> None:
    store, collection = loaded
    with psycopg.connect(database_url) as conn:
        doc_id, before = conn.execute(
            "SELECT d.id, count(p.*) FROM documents d JOIN chunks ch ON ch.document_id = d.id "
            "JOIN postings p ON p.chunk_id = ch.id WHERE d.collection_id = %s "
            "GROUP BY d.id ORDER BY d.id LIMIT 1",
            (collection.id,),
        ).fetchone()  # type: ignore[misc]
    assert before > 0
    run(store, store.delete_document(collection, doc_id))
    fresh = run(store, store.get_collection(collection.name))
    with psycopg.connect(database_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM postings p JOIN chunks ch ON ch.id = p.chunk_id "
            "WHERE ch.collection_id = %s",
            (collection.id,),
        ).fetchone()[0]  # type: ignore[index]
        chunk_postings = conn.execute(
            "SELECT count(*) FROM chunks ch, unnest(ch.tsv) u WHERE ch.collection_id = %s",
            (collection.id,),
        ).fetchone()[0]  # type: ignore[index]
        dfs = conn.execute(
            "SELECT t.df, (SELECT count(*) FROM postings p WHERE p.term_id = t.id) "
            "FROM term_stats t WHERE t.collection_id = %s",
            (collection.id,),
        ).fetchall()
    assert left == chunk_postings
    assert all(df == n for df, n in dfs)
    for text in queries()[:10]:
        got = run(store, store.search_keyword(fresh, text, k=10))  # type: ignore[arg-type]
        want = reference(database_url, fresh, text, 10)  # type: ignore[arg-type]
        assert [h.chunk_id for h in got] == [cid for cid, _ in want], text  # type: ignore[attr-defined]


def test_another_process_catches_up_with_changes(
    loaded: tuple[Store, Collection], database_url: str
) -> None:
    """A second Store (its own index, like another API replica) follows the first's writes."""
    writer, collection = loaded

    async def other_store() -> tuple[Store, Database]:
        db = Database(database_url)
        await db.open()
        return Store(db), db

    reader, reader_db = run(writer, other_store())  # type: ignore[misc]
    try:
        run(writer, reader.search_keyword(collection, "cell", k=5))
        index = reader._keyword[collection.id][0]
        loaded_version = index.version
        texts = ["gulase protein gulase", "hulase cell", "gulase gulase gulase cancer"]
        doc, _ = run(  # type: ignore[misc]
            writer,
            writer.create_document(
                collection,
                content="new",
                title="new",
                source=None,
                content_type="text/plain",
                metadata={"half": True},
            ),
        )
        vectors = np.ones((len(texts), 4), dtype=np.float32) / 2
        chunks = [Chunk(i, t, 0) for i, t in enumerate(texts)]
        run(writer, writer.write_chunks(doc, chunks, vectors))
        fresh = run(writer, writer.get_collection(collection.name))
        for text in ["gulase", "hulase cell", "gulase cancer protein"]:
            got = run(writer, reader.search_keyword(fresh, text, k=10))  # type: ignore[arg-type]
            want = reference(database_url, fresh, text, 10)  # type: ignore[arg-type]
            assert [h.chunk_id for h in got] == [c for c, _ in want], text  # type: ignore[attr-defined]
        caught_up = reader._keyword[collection.id][0]
        assert caught_up.loaded_version == index.loaded_version  # caught up, not reloaded
        assert caught_up.version > loaded_version
        # Re-ingesting the document replaces its chunks; deleting it removes them.
        run(writer, writer.write_chunks(doc, chunks[:1], vectors[:1]))
        got = run(writer, reader.search_keyword(fresh, "gulase", k=10))  # type: ignore[arg-type]
        assert len(got) == 1  # type: ignore[arg-type]
        run(writer, writer.delete_document(fresh, doc.id))  # type: ignore[arg-type]
        assert run(writer, reader.search_keyword(fresh, "gulase", k=10)) == []  # type: ignore[arg-type]
        assert reader._keyword[collection.id][0].loaded_version == index.loaded_version
    finally:
        run(writer, reader_db.close())


def test_warming_loads_indexes_before_any_search(
    loaded: tuple[Store, Collection], database_url: str
) -> None:
    writer, collection = loaded

    async def warm() -> tuple[int, dict[int, int]]:
        db = Database(database_url)
        await db.open()
        try:
            store = Store(db)
            count = await store.warm_keyword_indexes()
            return count, {cid: entry[0].version for cid, entry in store._keyword.items()}
        finally:
            await db.close()

    count, versions = run(writer, warm())  # type: ignore[misc]
    fresh = run(writer, writer.get_collection(collection.name))
    assert count >= 1
    with psycopg.connect(database_url) as conn:
        version = conn.execute(
            "SELECT version FROM collections WHERE id = %s", (collection.id,)
        ).fetchone()[0]  # type: ignore[index]
    assert versions[fresh.id] == version  # type: ignore[attr-defined]


def test_index_reloads_when_mostly_removed_or_behind_pruned_tombstones(
    loaded: tuple[Store, Collection], database_url: str
) -> None:
    writer, _ = loaded

    async def scenario() -> list[bool]:
        db = Database(database_url)
        await db.open()
        reader = Store(db)
        try:
            collection = await writer.create_collection(
                f"reload-{uuid.uuid4().hex[:6]}", description="", model="m", dimensions=4
            )
            docs = []
            for i, text in enumerate(corpus(seed=3, chunks=40)):
                doc, _ = await writer.create_document(
                    collection,
                    content=text,
                    title=str(i),
                    source=None,
                    content_type="text/plain",
                    metadata={},
                )
                vec = np.ones((1, 4), dtype=np.float32) / 2
                await writer.write_chunks(doc, [Chunk(0, text, 0)], vec)
                docs.append(doc)
            await reader.search_keyword(collection, "cell", k=3)
            first = reader._keyword[collection.id][0]
            for doc in docs[:20]:  # half the chunks gone: more than the 30% kept dead
                await writer.delete_document(collection, doc.id)
            fresh = await writer.get_collection(collection.name)
            got = await reader.search_keyword(fresh, "cell protein", k=40)
            second = reader._keyword[collection.id][0]
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(
                    "UPDATE collections SET removed_since = version + 1 WHERE id = %s",
                    (collection.id,),
                )
            await writer.delete_document(fresh, docs[20].id)
            fresh = await writer.get_collection(collection.name)
            got_after_prune = await reader.search_keyword(fresh, "cell protein", k=40)
            third = reader._keyword[collection.id][0]
            want = reference(database_url, fresh, "cell protein", 40)
            return [
                second.loaded_version != first.loaded_version,  # reloaded
                third.loaded_version != second.loaded_version,
                len(got) == 20,
                [h.chunk_id for h in got_after_prune] == [c for c, _ in want],
                second.live_chunks == 20 and third.live_chunks == 19,
            ]
        finally:
            await db.close()

    assert run(writer, scenario()) == [True] * 5


def test_the_index_cache_is_bounded_by_bytes_not_collections(
    loaded: tuple[Store, Collection], database_url: str
) -> None:
    """Indexes beyond `keyword_cache_bytes` are dropped, least recently searched first, and
    reload when searched again; one larger than the budget is still searched, alone."""
    writer, _ = loaded

    async def scenario() -> tuple[list[int], list[int], int, list[int]]:
        collections = []
        for _ in range(3):
            collection = await writer.create_collection(
                f"bytes-{uuid.uuid4().hex[:6]}", description="", model="m", dimensions=4
            )
            for i, text in enumerate(corpus(seed=5, chunks=60)):
                doc, _ = await writer.create_document(
                    collection,
                    content=text,
                    title=str(i),
                    source=None,
                    content_type="text/plain",
                    metadata={},
                )
                await writer.write_chunks(doc, [Chunk(0, text, 0)], np.ones((1, 4), np.float32))
            collections.append(await writer.get_collection(collection.name))
        db = Database(database_url)
        await db.open()
        try:
            probe = Store(db)
            await probe.search_keyword(collections[0], "cell", k=3)
            one = probe.keyword_bytes  # the three collections are alike: one index's size
            reader = Store(db, keyword_cache_bytes=one * 3 // 2)
            held = []
            for collection in collections:
                await reader.search_keyword(collection, "cell", k=3)
                held.append(len(reader._keyword))
            bounded = reader.keyword_bytes
            again = await reader.search_keyword(collections[0], "cell protein", k=5)
            want = await probe.search_keyword(collections[0], "cell protein", k=5)
            tiny = Store(db, keyword_cache_bytes=1)
            alone = await tiny.search_keyword(collections[1], "cell protein", k=5)
            return (
                held,
                [h.chunk_id for h in again],
                bounded - one * 3 // 2,
                [
                    len(tiny._keyword),
                    len(alone),
                    int([h.chunk_id for h in again] == [h.chunk_id for h in want]),
                ],
            )
        finally:
            await db.close()

    held, again, over, rest = run(writer, scenario())  # type: ignore[misc]
    assert held == [1, 1, 1]  # each load pushed the previous index out
    assert over <= 0
    assert again
    assert rest == [1, 5, 1]
