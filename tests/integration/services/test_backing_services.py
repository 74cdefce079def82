"""The real backing services start and do real work.

Aspects covered:
- Postgres: the `vector` extension installs; an HNSW (cosine) index answers nearest-neighbour
  queries and the planner uses it.
- Redis: values round-trip, expire, and a list works as a queue.
- Neo4j: a small graph is created and matched over Bolt with the official driver.
- Prometheus: scrapes a tiny local target and answers a PromQL query about it.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import cast

import psycopg
import pytest
import redis as redis_lib
from neo4j import GraphDatabase

from hack.services import Neo4jService, PostgresService, PrometheusService, RedisService

pytestmark = pytest.mark.integration


def test_postgres_finds_nearest_vectors_through_an_hnsw_index(postgres: PostgresService) -> None:
    url = postgres.create_database("smoke_vectors")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, embedding vector(3))")
        rows = [(1, "[1,0,0]"), (2, "[0,1,0]"), (3, "[0,0,1]"), (4, "[0.9,0.1,0]")]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO items VALUES (%s, %s)", rows)
        conn.execute("CREATE INDEX ON items USING hnsw (embedding vector_cosine_ops)")
        conn.execute("SET enable_seqscan = off")
        query = "SELECT id FROM items ORDER BY embedding <=> '[1,0.05,0]' LIMIT 2"
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + query).fetchall())
        nearest = [r[0] for r in conn.execute(query).fetchall()]
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname='vector'")
        assert version.fetchone() is not None
        server = conn.execute("SHOW server_version_num").fetchone()
    assert nearest == [1, 4]
    assert "items_embedding_idx" in plan
    assert server is not None
    assert int(server[0]) >= 180000


def test_redis_round_trips_values_and_queues(redis: RedisService) -> None:
    client = redis_lib.Redis.from_url(redis.url)
    client.set("smoke:key", "value", px=200)
    assert client.get("smoke:key") == b"value"
    client.rpush("smoke:queue", "a", "b")
    assert cast(bytes, client.lpop("smoke:queue")) == b"a"
    time.sleep(0.3)
    assert client.get("smoke:key") is None
    client.close()


def test_neo4j_creates_and_matches_a_graph(neo4j: Neo4jService) -> None:
    with GraphDatabase.driver(neo4j.uri, auth=(neo4j.user, neo4j.password)) as driver:
        driver.verify_connectivity()
        with driver.session() as session:
            session.run(
                "CREATE (:Entity {name:'pgvector'})-[:PART_OF]->(:Entity {name:'Postgres'}),"
                " (:Entity {name:'HNSW'})-[:USED_BY]->(:Entity {name:'pgvector2'})"
            ).consume()
            record = session.run(
                "MATCH (a:Entity)-[r:PART_OF]->(b:Entity)"
                " RETURN a.name AS a, type(r) AS r, b.name AS b"
            ).single()
    assert record is not None
    assert (record["a"], record["r"], record["b"]) == ("pgvector", "PART_OF", "Postgres")


class _MetricsHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'# TYPE smoke_requests_total counter\nsmoke_requests_total{route="/x"} 42\n'
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def metrics_target() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MetricsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _instant_query(prometheus: PrometheusService, promql: str) -> list[dict[str, object]]:
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        payload = json.load(resp)
    assert payload["status"] == "success"
    result: list[dict[str, object]] = payload["data"]["result"]
    return result


def test_prometheus_scrapes_a_local_target_and_answers_promql(
    prometheus: PrometheusService, metrics_target: str
) -> None:
    prometheus.set_targets([metrics_target], scrape_interval_s=0.2)
    deadline = time.monotonic() + 20
    result: list[dict[str, object]] = []
    while time.monotonic() < deadline and not result:
        result = _instant_query(prometheus, 'sum(smoke_requests_total{job="ragops"})')
        time.sleep(0.2)
    assert result, "Prometheus never scraped the target"
    value = result[0]["value"]
    assert isinstance(value, list)
    assert float(value[1]) == 42.0
    up = _instant_query(prometheus, f'up{{instance="{metrics_target}"}}')
    assert up, "no `up` series for the target"
    assert up[0]["value"] == [pytest.approx(up[0]["value"][0]), "1"]  # type: ignore[index]
