"""Graph retrieval on a real Neo4j: entities and relations written at ingestion, a query's
entities leading to chunks (directly or through related entities), evidence naming them,
deletes removing the graph nodes, and graph retrieval switched off without Neo4j.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from neo4j import GraphDatabase

from hack.services import Neo4jService
from tests.integration.runtime.helpers import add_documents, api

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
    query = (
        "MATCH (n) WHERE (n:Document AND n.id = $d) OR (n:Chunk AND n.document_id = $d) "
        "RETURN count(n) AS n"
    )
    with GraphDatabase.driver(neo4j.uri, auth=(neo4j.user, neo4j.password)) as driver:
        before = driver.execute_query(query, d=doc_id).records[0]["n"]
        assert client.delete(f"/api/v1/collections/genes/documents/{doc_id}").status_code == 204
        after = driver.execute_query(query, d=doc_id).records[0]["n"]
        orphan = driver.execute_query(
            "MATCH (e:Entity {collection: 'genes', name: 'mapk1'}) RETURN count(e) AS n"
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
        assert resp.status_code == 503
        assert "RAG_NEO4J_URI" in resp.json()["detail"]
        hybrid = c.post("/api/v1/search", json={"collection": "genes", "query": "BRCA1"})
        assert hybrid.status_code == 200


def test_unknown_document_ids_are_ignored_by_graph_search(client: TestClient) -> None:
    assert uuid.uuid4()  # graph hits are joined with Postgres; stale ids never surface
    assert all(h["chunk_id"] for h in graph_search(client, "DNA repair"))
