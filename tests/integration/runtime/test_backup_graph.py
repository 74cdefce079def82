"""Restore rebuilds the graph from Postgres, exactly (real Postgres and Neo4j).

Covers: after a backup, the graph is lost and the system restored into a new database with
RAG_NEO4J_URI set: the rebuilt graph, in the new database's own graph scope (not the
backup's), has the same documents, chunks, mentions and relation weights as the one ingestion
wrote, and graph retrieval returns the same top-10.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from neo4j import GraphDatabase

from hack.services import Neo4jService, PostgresService
from tests.integration.runtime.helpers import add_documents, api

pytestmark = pytest.mark.integration

COLLECTION = "genes-dr"
DOCS = [
    {"title": "brca", "text": "Mutations in BRCA1 raise the risk of breast cancer. "
     "BRCA1 works with RAD51 to repair DNA."},
    {"title": "rad51", "text": "RAD51 forms filaments on single-stranded DNA during repair."},
    {"title": "tower", "text": "The Eiffel Tower was built for the World Fair in Paris."},
    {"title": "paris", "text": "Paris hosted the World Fair; the Eiffel Tower still stands."},
]  # fmt: skip
QUERIES = ["BRCA1 and RAD51", "Eiffel Tower in Paris", "DNA repair"]


def scope_of(database_url: str) -> str:
    """The database's graph scope: what its nodes in Neo4j carry."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id::text FROM graph_scope").fetchone()
    assert row is not None
    return str(row[0])


def graph_of(neo4j: Neo4jService, database_url: str) -> dict[str, list[Any]]:
    """The graph of the database's collection COLLECTION: mentions and relation weights."""
    scope = scope_of(database_url)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM collections WHERE name = %s", (COLLECTION,)).fetchone()
    collection = row[0] if row else -1
    driver = GraphDatabase.driver(neo4j.uri, auth=(neo4j.user, neo4j.password))
    try:
        with driver.session() as session:
            mentions = session.run(
                "MATCH (d:Document {scope: $s, collection_id: $c})-[:HAS_CHUNK]->(ch:Chunk)"
                "-[:MENTIONS]->(e:Entity) "
                "RETURN d.id AS d, ch.id AS ch, ch.ordinal AS o, e.name AS e ORDER BY d, ch, e",
                s=scope,
                c=collection,
            ).values()
            related = session.run(
                "MATCH (a:Entity {scope: $s, collection_id: $c})-[r:RELATED {scope: $s}]-"
                "(b:Entity) WHERE a.name < b.name "
                "RETURN a.name, b.name, r.weight ORDER BY a.name, b.name",
                s=scope,
                c=collection,
            ).values()
    finally:
        driver.close()
    return {"mentions": mentions, "related": related}


def drop_graph(neo4j: Neo4jService, database_url: str) -> None:
    """Lose the database's whole graph (every node of its scope)."""
    driver = GraphDatabase.driver(neo4j.uri, auth=(neo4j.user, neo4j.password))
    try:
        with driver.session() as session:
            session.run("MATCH (n {scope: $s}) DETACH DELETE n", s=scope_of(database_url)).consume()
    finally:
        driver.close()


def graph_top10(client: TestClient) -> list[list[Any]]:
    found = []
    for q in QUERIES:
        body = {"collection": COLLECTION, "query": q, "strategy": "graph", "top_k": 10}
        resp = client.post("/api/v1/search", json=body)
        assert resp.status_code == 200, resp.text
        found.append([(h["chunk_id"], round(h["score"], 5)) for h in resp.json()["results"]])
    return found


def test_restore_rebuilds_the_same_graph(
    postgres: PostgresService, neo4j: Neo4jService, tmp_path: Path
) -> None:
    graph = {"neo4j_uri": neo4j.uri, "neo4j_user": neo4j.user, "neo4j_password": neo4j.password}
    source = postgres.create_database("rt_backup_graph_source")
    with api(database_url=source, **graph) as client:
        add_documents(client, COLLECTION, DOCS)
        before_top = graph_top10(client)
    before = graph_of(neo4j, source)
    assert before["mentions"]
    assert before["related"]
    env = {**os.environ, "RAG_DATABASE_URL": source, "RAG_LOG_LEVEL": "warning",
           "RAG_NEO4J_URI": neo4j.uri, "RAG_NEO4J_USER": neo4j.user,
           "RAG_NEO4J_PASSWORD": neo4j.password}  # fmt: skip
    where = f"file://{tmp_path}"
    cli = [sys.executable, "-m", "rag_runtime.cli"]
    made = subprocess.run([*cli, "backup", "create", "--to", where, "--name", "g"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr
    drop_graph(neo4j, source)
    assert graph_of(neo4j, source) == {"mentions": [], "related": []}
    target = postgres.create_database("rt_backup_graph_target")
    done = subprocess.run([*cli, "restore", "--from", where, "--name", "g"],
                          env={**env, "RAG_DATABASE_URL": target}, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    restored = json.loads(done.stdout.strip().splitlines()[-1])
    assert restored["graph_documents"] == 4
    assert restored["graph_scope"] == scope_of(target) != scope_of(source)
    assert restored["backup_graph_scope"] == scope_of(source)
    assert graph_of(neo4j, target) == before
    assert graph_of(neo4j, source) == {"mentions": [], "related": []}  # not the backup's scope
    with api(database_url=target, **graph) as client:
        assert graph_top10(client) == before_top
