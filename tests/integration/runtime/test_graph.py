"""Graph retrieval on a real Neo4j: entities and relations written at ingestion, a query's
entities leading to chunks (directly or through related entities), evidence naming them,
deletes removing the graph nodes, and graph retrieval switched off without Neo4j.

Writes and deletes: indexing a document again (a retried ingestion) leaves the same graph
(relation weights do not grow); a collection delete that fails in Neo4j after Postgres
committed is completed by the graph sweep, in batches; a collection created again under the
same name inherits nothing (the graph is keyed by collection id); a document deleted while it
is being indexed leaves no nodes. Every count here is of this database's graph scope: the
session's Neo4j holds other test databases' graphs too (test_graph_scope covers that).
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from neo4j import GraphDatabase

import rag_runtime.graph
from hack.services import Neo4jService
from rag_runtime.graph import GraphChunk
from tests.integration.runtime.helpers import TcpProxy, add_documents, api

pytestmark = pytest.mark.integration

DOCS = [
    {
        "title": "brca",
        "text": "Mutations in BRCA1 raise the risk of breast cancer. "
        "BRCA1 works with RAD51 to repair DNA.",
    },
    {"title": "rad51", "text": "RAD51 forms filaments on single-stranded DNA during repair."},
    {"title": "tower", "text": "The Eiffel Tower was built for the World Fair in Paris."},
]


@pytest.fixture(scope="module")
def client(database_url: str, neo4j: Neo4jService) -> Iterator[TestClient]:
    with api(
        database_url=database_url,
        neo4j_uri=neo4j.uri,
        neo4j_user=neo4j.user,
        neo4j_password=neo4j.password,
    ) as c:
        add_documents(c, "genes", DOCS)
        yield c


def graph_search(client: TestClient, query: str) -> list[dict]:  # type: ignore[type-arg]
    resp = client.post(
        "/api/v1/search",
        json={"collection": "genes", "query": query, "strategy": "graph", "top_k": 5},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["results"]  # type: ignore[no-any-return]


def test_query_entities_lead_to_the_chunks_that_mention_them(client: TestClient) -> None:
    hits = graph_search(client, "what does brca1 do?")
    assert hits[0]["document_title"] == "brca"
    assert "brca1" in hits[0]["evidence"]["entities"]


def test_related_entities_reach_further_chunks(client: TestClient) -> None:
    hits = graph_search(client, "BRCA1 partners")
    titles = [h["document_title"] for h in hits]
    assert "rad51" in titles  # only through BRCA1 -RELATED- RAD51
    rad = next(h for h in hits if h["document_title"] == "rad51")
    assert "rad51" in rad["evidence"]["related"]


def test_ready_reports_the_graph_up(client: TestClient) -> None:
    assert client.get("/api/v1/ready").json()["checks"]["graph"]["status"] == "up"


def test_delete_removes_graph_nodes(client: TestClient, neo4j: Neo4jService) -> None:
    doc_id = add_documents(client, "genes", [{"text": "Kinase MAPK1 signals growth."}])[0]
    scope = _scope(client)
    query = (
        "MATCH (n {scope: $s}) WHERE (n:Document AND n.id = $d) "
        "OR (n:Chunk AND n.document_id = $d) RETURN count(n) AS n"
    )
    with GraphDatabase.driver(neo4j.uri, auth=(neo4j.user, neo4j.password)) as driver:
        before = driver.execute_query(query, s=scope, d=doc_id).records[0]["n"]
        assert client.delete(f"/api/v1/collections/genes/documents/{doc_id}").status_code == 204
        after = driver.execute_query(query, s=scope, d=doc_id).records[0]["n"]
        orphan = driver.execute_query(
            "MATCH (e:Entity {scope: $s, name: 'mapk1'}) RETURN count(e) AS n", s=scope
        ).records[0]["n"]
    assert before >= 2
    assert (after, orphan) == (0, 0)
    assert graph_search(client, "MAPK1") == []


def test_graph_is_off_without_neo4j(database_url: str) -> None:
    with api(database_url=database_url) as c:
        assert c.get("/api/v1/ready").json()["checks"]["graph"]["status"] == "disabled"
        resp = c.post(
            "/api/v1/search", json={"collection": "genes", "query": "BRCA1", "strategy": "graph"}
        )
        assert resp.status_code == 409
        assert "RAG_NEO4J_URI" in resp.json()["detail"]
        hybrid = c.post("/api/v1/search", json={"collection": "genes", "query": "BRCA1"})
        assert hybrid.status_code == 200


def test_unknown_document_ids_are_ignored_by_graph_search(client: TestClient) -> None:
    assert uuid.uuid4()  # graph hits are joined with Postgres; stale ids never surface
    assert all(h["chunk_id"] for h in graph_search(client, "DNA repair"))


def _runtime(client: TestClient) -> Any:
    return client.app.state.runtime  # type: ignore[attr-defined]


def _call(client: TestClient, fn: Any, *args: Any, **kwargs: Any) -> Any:
    assert client.portal is not None
    return client.portal.call(functools.partial(fn, *args, **kwargs))


def _scope(client: TestClient) -> str:
    return str(_call(client, _runtime(client).store.graph_scope))


def _count(neo4j: Neo4jService, query: str, **params: Any) -> int:
    with GraphDatabase.driver(neo4j.uri, auth=(neo4j.user, neo4j.password)) as driver:
        return int(driver.execute_query(query, **params).records[0]["n"])


def test_indexing_a_document_again_leaves_the_same_graph(
    client: TestClient, neo4j: Neo4jService
) -> None:
    rt = _runtime(client)
    collection = _call(client, rt.store.get_collection, "genes")
    doc_id = uuid.uuid4()
    chunks = [GraphChunk(10_000_001, 0, "BRCA1 binds PALB2 and BRCA2 in Homologous Repair.")]
    weights = "MATCH ()-[r:RELATED {scope: $s}]->() RETURN coalesce(sum(r.weight), 0) AS n"
    nodes = "MATCH (n {scope: $s}) RETURN count(n) AS n"

    def graph() -> tuple[int, int]:
        scope = _scope(client)
        return _count(neo4j, weights, s=scope), _count(neo4j, nodes, s=scope)

    before = graph()
    _call(client, rt.graph.index_document, collection.id, doc_id, chunks)
    once = graph()
    for _ in range(2):  # retried ingestions
        _call(client, rt.graph.index_document, collection.id, doc_id, chunks)
    assert graph() == once
    assert once[0] > before[0]
    _call(client, rt.graph.delete_document, doc_id)
    assert graph() == before


@pytest.fixture
def proxied(
    database_url: str, neo4j: Neo4jService, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, TcpProxy]]:
    monkeypatch.setattr(rag_runtime.graph, "DELETE_BATCH", 3)  # several batches per delete
    proxy = TcpProxy("127.0.0.1", neo4j.port)
    try:
        with api(
            database_url=database_url,
            neo4j_uri=f"bolt://127.0.0.1:{proxy.port}",
            neo4j_user=neo4j.user,
            neo4j_password=neo4j.password,
        ) as c:
            yield c, proxy
    finally:
        proxy.down()


def test_a_collection_delete_failing_in_neo4j_is_completed_and_inherits_nothing(
    proxied: tuple[TestClient, TcpProxy], neo4j: Neo4jService
) -> None:
    client, proxy = proxied
    add_documents(client, "phoenix", DOCS)
    old = _call(client, _runtime(client).store.get_collection, "phoenix")
    scope = _scope(client)
    of_old = "MATCH (n {scope: $s}) WHERE n.collection_id = $c RETURN count(n) AS n"
    assert _count(neo4j, of_old, s=scope, c=old.id) > 3
    proxy.down()
    assert client.delete("/api/v1/collections/phoenix").status_code == 204  # Postgres did
    proxy.up()
    assert _count(neo4j, of_old, s=scope, c=old.id) > 3  # Neo4j did not
    add_documents(client, "phoenix", [{"text": "The Golden Gate Bridge spans the bay."}])
    resp = client.post(
        "/api/v1/search",
        json={"collection": "phoenix", "query": "BRCA1 and RAD51", "strategy": "graph"},
    )
    assert resp.status_code == 200
    assert resp.json()["results"] == []  # the new collection inherits no old entity
    assert _call(client, _runtime(client).sweep_graph) > 0
    assert _count(neo4j, of_old, s=scope, c=old.id) == 0
    collection = "MATCH (k:Collection {scope: $s, id: $c}) RETURN count(k) AS n"
    assert _count(neo4j, collection, s=scope, c=old.id) == 0


def test_a_document_deleted_while_indexed_leaves_no_nodes(
    client: TestClient, neo4j: Neo4jService, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = _runtime(client)
    index = rt.graph.index_document
    done = threading.Event()
    seen: list[uuid.UUID] = []

    async def deleted_meanwhile(collection_id: int, document_id: uuid.UUID, chunks: Any) -> Any:
        collection = await rt.store.get_collection("genes")
        await rt.store.delete_document(collection, document_id)  # what a DELETE does first
        await rt.graph.delete_document(document_id)  # ... and then: nothing there yet
        try:
            return await index(collection_id, document_id, chunks)
        finally:
            seen.append(document_id)
            done.set()

    monkeypatch.setattr(rt.graph, "index_document", deleted_meanwhile)
    resp = client.post(
        "/api/v1/collections/genes/documents", json={"text": "Kinase ERK2 and MEK1 interact."}
    )
    assert resp.status_code == 202
    assert done.wait(60)
    doc_id = resp.json()["id"]
    query = (
        "MATCH (n {scope: $s}) WHERE (n:Document AND n.id = $d) "
        "OR (n:Chunk AND n.document_id = $d) "
        "OR (n:Entity AND n.name IN ['erk2', 'mek1']) RETURN count(n) AS n"
    )
    scope = _scope(client)
    deadline = time.monotonic() + 60
    while _count(neo4j, query, s=scope, d=doc_id) and time.monotonic() < deadline:
        time.sleep(0.2)  # the ingestion finishes its clean-up
    assert _count(neo4j, query, s=scope, d=doc_id) == 0
    assert [str(d) for d in seen] == [doc_id]
