"""Two databases, one Neo4j: each runtime's graph is its own (real Postgres and Neo4j).

Both databases number collections and chunks from 1, so their collections share an id and
their chunk ids overlap. Covers: each database's graph search finds its own documents and
none of the other's; the graph sweep of one database leaves the other's graph as it was (the
sweep used to delete what its own Postgres lacked, i.e. the other database's graph); deleting
the collection in one database leaves the other's graph and search intact.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from neo4j import GraphDatabase

from hack.services import Neo4jService, PostgresService
from tests.integration.runtime.helpers import add_documents, api

pytestmark = pytest.mark.integration

COLLECTION = "shared"
GENES = [
    {"title": "brca", "text": "Mutations in BRCA1 raise the risk of breast cancer. "
     "BRCA1 works with RAD51 to repair DNA."},
    {"title": "rad51", "text": "RAD51 forms filaments on single-stranded DNA during repair."},
]  # fmt: skip
PARIS = [
    {"title": "tower", "text": "The Eiffel Tower was built for the World Fair in Paris."},
    {"title": "louvre", "text": "The Louvre Museum in Paris keeps the Mona Lisa."},
]


def _db(url: str, query: str) -> list[Any]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(query).fetchall()]


def _graph_nodes(neo4j: Neo4jService, url: str) -> int:
    """How many nodes the database's graph scope holds."""
    (scope,) = _db(url, "SELECT id::text FROM graph_scope")
    with GraphDatabase.driver(neo4j.uri, auth=(neo4j.user, neo4j.password)) as driver:
        records = driver.execute_query("MATCH (n {scope: $s}) RETURN count(n) AS n", s=scope)
    return int(records.records[0]["n"])


def _titles(client: TestClient, query: str) -> list[str]:
    body = {"collection": COLLECTION, "query": query, "strategy": "graph", "top_k": 10}
    resp = client.post("/api/v1/search", json=body)
    assert resp.status_code == 200, resp.text
    return sorted({h["document_title"] for h in resp.json()["results"]})


def _sweep(client: TestClient) -> int:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert client.portal is not None
    return int(client.portal.call(functools.partial(runtime.sweep_graph)))


@pytest.fixture
def two(
    postgres: PostgresService, neo4j: Neo4jService
) -> Iterator[tuple[TestClient, str, TestClient, str]]:
    """Runtimes of two fresh databases on the session's Neo4j, each with COLLECTION."""
    graph = {"neo4j_uri": neo4j.uri, "neo4j_user": neo4j.user, "neo4j_password": neo4j.password}
    a, b = (postgres.create_database(f"rt_graph_scope_{x}") for x in "ab")
    with api(database_url=a, **graph) as ca, api(database_url=b, **graph) as cb:
        add_documents(ca, COLLECTION, GENES)
        add_documents(cb, COLLECTION, PARIS)
        yield ca, a, cb, b


def test_databases_sharing_a_neo4j_keep_their_graphs_apart(
    two: tuple[TestClient, str, TestClient, str], neo4j: Neo4jService
) -> None:
    ca, a, cb, b = two
    ids = "SELECT id FROM collections"
    assert _db(a, ids) == _db(b, ids)  # the same collection id in both
    chunks = "SELECT id FROM chunks"
    assert set(_db(a, chunks)) & set(_db(b, chunks))  # and some of the same chunk ids
    assert _db(a, "SELECT id FROM graph_scope") != _db(b, "SELECT id FROM graph_scope")
    assert _titles(ca, "BRCA1 and RAD51") == ["brca", "rad51"]
    assert _titles(cb, "BRCA1 and RAD51") == []
    assert _titles(cb, "Eiffel Tower in Paris") == ["louvre", "tower"]
    assert _titles(ca, "Eiffel Tower in Paris") == []
    nodes_a, nodes_b = _graph_nodes(neo4j, a), _graph_nodes(neo4j, b)
    assert nodes_a > 0
    assert nodes_b > 0
    assert (_sweep(ca), _sweep(cb)) == (0, 0)  # neither sees the other's nodes as stale
    assert (_graph_nodes(neo4j, a), _graph_nodes(neo4j, b)) == (nodes_a, nodes_b)


def test_deleting_a_collection_in_one_database_leaves_the_others_graph(
    two: tuple[TestClient, str, TestClient, str], neo4j: Neo4jService
) -> None:
    ca, a, cb, b = two
    nodes_a = _graph_nodes(neo4j, a)
    assert cb.delete(f"/api/v1/collections/{COLLECTION}").status_code == 204
    assert _graph_nodes(neo4j, b) == 0
    assert _sweep(ca) == 0
    assert _sweep(cb) == 0
    assert _graph_nodes(neo4j, a) == nodes_a
    assert _titles(ca, "BRCA1 and RAD51") == ["brca", "rad51"]
    add_documents(cb, COLLECTION, PARIS[:1])  # created again, on the same Neo4j
    assert _titles(cb, "BRCA1 and RAD51") == []
    assert _titles(cb, "Eiffel Tower in Paris") == ["tower"]
    assert _graph_nodes(neo4j, a) == nodes_a
