"""Graph retrieval on Neo4j: entities and co-occurrence relations found at ingestion.

Entities are found by a dependency-free heuristic (acronyms and gene-like tokens, capitalized
phrases, hyphenated or numeric terms). A chunk MENTIONS its entities; entities mentioned in
the same chunk are RELATED (one edge per document, weight = its chunks in common). Everything
is keyed by the collection's id, never its name: a collection created again under an old
name starts with an empty graph. A query's entities lead to the chunks
that mention them, and, with less weight, to chunks of related entities.

Every node and relation carries the database's graph scope (migration 0004), and every
statement matches it: databases number collections and chunks alike, so runtimes of several
databases can share one Neo4j without reading, or sweeping away, each other's graphs.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from rag_runtime.domain import Scored
from rag_runtime.errors import ServiceUnavailableError

_ACRONYM = re.compile(r"\b(?=[A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*[A-Z0-9])[A-Za-z][A-Za-z0-9-]{1,24}\b")
_CAPITALIZED = re.compile(r"\b[A-Z][a-z]{2,}(?:\s+[A-Z][a-z]{2,}){0,3}\b")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_STOP_WORDS = (
    "a an and are as at be by for from has have in is it its of on or that the this "
    "to was were which with we our these those there their than then however here "
    "also after before between during such when where while into using used use can "
    "may not no both all each other more most some any many much few very only one "
    "two three first second new"
)
_STOP = frozenset(_STOP_WORDS.split())
MAX_ENTITIES_PER_CHUNK = 24
DELETE_BATCH = 5000  # nodes per DETACH DELETE transaction
LABELS = ("Chunk", "Entity", "Document", "Collection")  # in the order a delete removes them
# The graph's schema before it had scopes: its constraints would make one database's ids
# block another's writes; its indexes have no reader left.
UNSCOPED_CONSTRAINTS = ("rag_entity_of_collection", "rag_chunk", "rag_document", "rag_collection")
UNSCOPED_INDEXES = (
    "rag_chunk_collection",
    "rag_document_collection",
    "rag_entity_collection",
    "rag_related_document",
)
SCHEMA = (
    "CREATE CONSTRAINT rag_scoped_entity IF NOT EXISTS FOR (e:Entity) "
    "REQUIRE (e.scope, e.collection_id, e.name) IS UNIQUE",
    "CREATE CONSTRAINT rag_scoped_chunk IF NOT EXISTS FOR (c:Chunk) REQUIRE (c.scope, c.id) "
    "IS UNIQUE",
    "CREATE CONSTRAINT rag_scoped_document IF NOT EXISTS FOR (d:Document) "
    "REQUIRE (d.scope, d.id) IS UNIQUE",
    "CREATE CONSTRAINT rag_scoped_collection IF NOT EXISTS FOR (k:Collection) "
    "REQUIRE (k.scope, k.id) IS UNIQUE",
    "CREATE INDEX rag_scoped_chunk_collection IF NOT EXISTS FOR (c:Chunk) "
    "ON (c.scope, c.collection_id)",
    "CREATE INDEX rag_scoped_chunk_document IF NOT EXISTS FOR (c:Chunk) "
    "ON (c.scope, c.document_id)",
    "CREATE INDEX rag_scoped_document_collection IF NOT EXISTS FOR (d:Document) "
    "ON (d.scope, d.collection_id)",
    "CREATE INDEX rag_scoped_entity_collection IF NOT EXISTS FOR (e:Entity) "
    "ON (e.scope, e.collection_id)",
    "CREATE INDEX rag_scoped_related_document IF NOT EXISTS FOR ()-[r:RELATED]-() "
    "ON (r.scope, r.document_id)",
)
Scope = Callable[[], Awaitable[str]]  # the database's graph scope (Store.graph_scope)


def extract_entities(text: str) -> list[str]:
    """Normalized (lower-case) entity names in order of first appearance."""
    found: list[str] = []
    for match in _ACRONYM.finditer(text):
        token = match.group(0).strip("-")
        if sum(ch.isupper() for ch in token) >= 2 or any(ch.isdigit() for ch in token):
            found.append(token)
    for match in _CAPITALIZED.finditer(text):
        phrase = match.group(0)
        words = phrase.split()
        start = match.start()
        sentence_start = start == 0 or text[max(0, start - 2) : start].strip() in {
            ".",
            "!",
            "?",
            "",
        }
        if len(words) == 1 and sentence_start:
            continue
        if words[0].lower() in _STOP:
            words = words[1:]
        if words and not (len(words) == 1 and words[0].lower() in _STOP):
            found.append(" ".join(words))
    seen: dict[str, None] = {}
    for name in found:
        key = name.lower()
        if len(key) >= 2 and key not in _STOP:
            seen.setdefault(key, None)
    return list(seen)[:MAX_ENTITIES_PER_CHUNK]


def query_candidates(text: str) -> list[str]:
    """Entity names to look up for a query: its entities plus its 1-3 word n-grams."""
    words = [w.lower() for w in _WORD.findall(text)]
    grams = {
        " ".join(words[i : i + n])
        for n in (1, 2, 3)
        for i in range(len(words) - n + 1)
        if words[i] not in _STOP and words[i + n - 1] not in _STOP
    }
    return sorted(set(extract_entities(text)) | grams)


@dataclass(frozen=True)
class GraphChunk:
    chunk_id: int
    ordinal: int
    text: str


class GraphStore:
    """Neo4j access for one runtime, within its database's scope; every call maps driver
    failures to 503."""

    def __init__(
        self, uri: str, user: str, password: str, scope: Scope, retry_seconds: float = 30.0
    ) -> None:
        from neo4j import AsyncGraphDatabase

        self.driver = AsyncGraphDatabase.driver(
            uri,
            auth=(user, password),
            connection_timeout=5,
            max_transaction_retry_time=retry_seconds,
            notifications_min_severity="OFF",
        )
        self._scope = scope
        self._schema_ready = False
        # Concurrent MERGEs on shared entities deadlock in Neo4j; write one at a time here
        # (managed transactions also retry deadlocks between processes).
        self._write_lock = asyncio.Lock()
        self._schema_lock = asyncio.Lock()

    async def close(self) -> None:
        await self.driver.close()

    async def ping(self) -> None:
        await self._run("RETURN 1")

    async def _run(self, query: str, *, write: bool = False, **params: Any) -> list[dict[str, Any]]:
        from neo4j.exceptions import Neo4jError, ServiceUnavailable, SessionExpired

        async def work(tx: Any) -> list[dict[str, Any]]:
            result = await tx.run(query, params)
            return [dict(r) async for r in result]

        try:
            async with self.driver.session() as session:
                if write:
                    async with self._write_lock:
                        rows: list[dict[str, Any]] = await session.execute_write(work)
                        return rows
                result = await session.run(query, params)
                return [dict(r) async for r in result]
        except (ServiceUnavailable, SessionExpired, OSError) as exc:
            raise ServiceUnavailableError("graph store unavailable", cause=exc) from exc
        except Neo4jError as exc:
            raise ServiceUnavailableError("graph store error", cause=exc.message or exc) from exc

    async def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        async with self._schema_lock:
            await self._create_schema()

    async def _create_schema(self) -> None:
        if self._schema_ready:
            return
        for name in UNSCOPED_CONSTRAINTS:
            await self._run(f"DROP CONSTRAINT {name} IF EXISTS")
        for name in UNSCOPED_INDEXES:
            await self._run(f"DROP INDEX {name} IF EXISTS")
        for stmt in SCHEMA:
            await self._run(stmt)
        self._schema_ready = True

    async def index_document(
        self, collection_id: int, document_id: uuid.UUID, chunks: list[GraphChunk]
    ) -> int:
        """Write a document's chunks, their entities and relations; returns entity count.

        Idempotent: the document's earlier nodes and relations go first, and each relation
        it adds is its own (`document_id` on the RELATED edge, weight set, never added to),
        so a retried ingestion leaves the graph as one ingestion does.
        """
        await self.ensure_schema()
        await self.delete_document(document_id)
        scope = await self._scope()
        rows = []
        pairs: Counter[tuple[str, str]] = Counter()
        names: set[str] = set()
        for ch in chunks:
            entities = extract_entities(ch.text)
            names.update(entities)
            rows.append({"id": ch.chunk_id, "ordinal": ch.ordinal, "entities": entities})
            pairs.update(combinations(sorted(entities), 2))
        doc = str(document_id)
        await self._run(
            "MERGE (k:Collection {scope: $s, id: $collection}) "
            "MERGE (d:Document {scope: $s, id: $doc}) SET d.collection_id = $collection "
            "WITH d UNWIND $rows AS row "
            "MERGE (c:Chunk {scope: $s, id: row.id}) SET c.collection_id = $collection, "
            "c.document_id = $doc, c.ordinal = row.ordinal "
            "MERGE (d)-[:HAS_CHUNK]->(c) "
            "WITH c, row UNWIND row.entities AS name "
            "MERGE (e:Entity {scope: $s, collection_id: $collection, name: name}) "
            "MERGE (c)-[:MENTIONS]->(e)",
            write=True,
            s=scope,
            doc=doc,
            collection=collection_id,
            rows=rows,
        )
        if pairs:
            await self._run(
                "UNWIND $pairs AS p "
                "MATCH (a:Entity {scope: $s, collection_id: $collection, name: p.a}) "
                "MATCH (b:Entity {scope: $s, collection_id: $collection, name: p.b}) "
                "MERGE (a)-[r:RELATED {scope: $s, document_id: $doc}]->(b) SET r.weight = p.w",
                write=True,
                s=scope,
                collection=collection_id,
                doc=doc,
                pairs=[{"a": a, "b": b, "w": w} for (a, b), w in pairs.items()],
            )
        return len(names)

    async def delete_document(self, document_id: uuid.UUID) -> None:
        """Remove the document's nodes and relations, then entities no chunk mentions."""
        scope, doc = await self._scope(), str(document_id)
        await self._run(
            "MATCH ()-[r:RELATED {scope: $s, document_id: $doc}]->() DELETE r",
            write=True,
            s=scope,
            doc=doc,
        )
        await self._run(
            "MATCH (d:Document {scope: $s, id: $doc}) OPTIONAL MATCH (d)-[:HAS_CHUNK]->(c:Chunk) "
            "OPTIONAL MATCH (c)-[:MENTIONS]->(e:Entity) "
            "WITH d, collect(DISTINCT c) AS chunks, collect(DISTINCT e) AS entities "
            "FOREACH (c IN chunks | DETACH DELETE c) DETACH DELETE d "
            "WITH entities UNWIND entities AS e "
            "WITH e WHERE NOT (e)<-[:MENTIONS]-() DETACH DELETE e",
            write=True,
            s=scope,
            doc=doc,
        )

    async def delete_collection(self, collection_id: int) -> int:
        """Remove every node of the collection, in batches of DELETE_BATCH; how many went."""
        removed = 0
        for label in LABELS:
            key = "id" if label == "Collection" else "collection_id"
            removed += await self._delete_batched(label, f"{key}: $c", c=collection_id)
        return removed

    async def clear(self) -> int:
        """Remove every node of this scope (a restore starts its graph again); how many went."""
        removed = 0
        for label in LABELS:
            removed += await self._delete_batched(label, "")
        return removed

    async def _delete_batched(self, label: str, match: str, **params: Any) -> int:
        """DETACH DELETE the scope's `label` nodes matching `match`, DELETE_BATCH at a time."""
        scope, props = await self._scope(), ", ".join(["scope: $s", *([match] if match else [])])
        removed = 0
        while True:
            rows = await self._run(
                f"MATCH (n:{label} {{{props}}}) WITH n LIMIT $batch "
                "DETACH DELETE n RETURN count(*) AS n",
                write=True,
                s=scope,
                batch=DELETE_BATCH,
                **params,
            )
            count = int(rows[0]["n"]) if rows else 0
            removed += count
            if count < DELETE_BATCH:
                return removed

    async def collection_ids(self) -> set[int]:
        """The collections this scope's graph holds (never another database's)."""
        rows = await self._run(
            "MATCH (k:Collection {scope: $s}) RETURN k.id AS id", s=await self._scope()
        )
        return {int(r["id"]) for r in rows}

    async def document_ids(self, collection_id: int, *, after: str, limit: int) -> list[str]:
        rows = await self._run(
            "MATCH (d:Document {scope: $s, collection_id: $c}) WHERE d.id > $after "
            "RETURN d.id AS id ORDER BY d.id LIMIT $limit",
            s=await self._scope(),
            c=collection_id,
            after=after,
            limit=limit,
        )
        return [str(r["id"]) for r in rows]

    async def count_document_nodes(self, document_id: uuid.UUID) -> int:
        rows = await self._run(
            "MATCH (n) WHERE n.scope = $s AND ((n:Document AND n.id = $doc) "
            "OR (n:Chunk AND n.document_id = $doc)) RETURN count(n) AS n",
            s=await self._scope(),
            doc=str(document_id),
        )
        return int(rows[0]["n"]) if rows else 0

    async def search(self, collection_id: int, query: str, *, k: int) -> list[Scored]:
        """Chunks mentioning the query's entities (1.0 each) or related ones (0.3 x weight)."""
        names = query_candidates(query)
        if not names:
            return []
        scope = await self._scope()
        direct = await self._run(
            "MATCH (e:Entity {scope: $s, collection_id: $c}) WHERE e.name IN $names "
            "MATCH (ch:Chunk)-[:MENTIONS]->(e) "
            "WITH ch, collect(e.name) AS entities "
            "RETURN ch.id AS id, entities ORDER BY size(entities) DESC LIMIT $limit",
            s=scope,
            c=collection_id,
            names=names,
            limit=k * 4,
        )
        related = await self._run(
            "MATCH (e:Entity {scope: $s, collection_id: $c}) WHERE e.name IN $names "
            "MATCH (e)-[r:RELATED]-(o:Entity) WHERE NOT o.name IN $names "
            "WITH o, sum(r.weight) AS w, collect(DISTINCT e.name) AS via "
            "ORDER BY w DESC LIMIT 20 "
            "MATCH (ch:Chunk)-[:MENTIONS]->(o) "
            "RETURN ch.id AS id, collect(o.name) AS entities, sum(w) AS weight, "
            "collect(via) AS via LIMIT $limit",
            s=scope,
            c=collection_id,
            names=names,
            limit=k * 4,
        )
        scores: dict[int, Scored] = {}
        for row in direct:
            hit = scores.setdefault(
                row["id"], Scored(row["id"], 0.0, {"entities": [], "related": []})
            )
            hit.score += float(len(row["entities"]))
            hit.evidence["entities"] = sorted(set(row["entities"]))
        max_w = max((float(r["weight"]) for r in related), default=1.0) or 1.0
        for row in related:
            hit = scores.setdefault(
                row["id"], Scored(row["id"], 0.0, {"entities": [], "related": []})
            )
            hit.score += 0.3 * float(row["weight"]) / max_w
            hit.evidence["related"] = sorted(set(row["entities"]))
        ranked = sorted(scores.values(), key=lambda h: (-h.score, h.chunk_id))
        return ranked[:k]
