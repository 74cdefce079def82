"""Real backing services for tests, the demo and benchmarks, each on a free loopback port.

Each `start_*` returns a handle with a URL and `stop()`; `running_services()` starts the set a
caller asks for and stops all of them on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hack.paths import cache_dir
from hack.services._process import ServiceStartError, dies_with_parent, free_port
from hack.services.neo4j import Neo4jService, start_neo4j
from hack.services.postgres import PostgresService, start_postgres
from hack.services.prometheus import PrometheusService, start_prometheus
from hack.services.redis import RedisService, start_redis
from hack.services.s3 import S3Service, start_s3

ALL_SERVICES = ("postgres", "redis", "neo4j", "prometheus")

__all__ = [
    "ALL_SERVICES",
    "Neo4jService",
    "PostgresService",
    "PrometheusService",
    "RedisService",
    "S3Service",
    "ServiceStartError",
    "Services",
    "dies_with_parent",
    "free_port",
    "running_services",
    "start_neo4j",
    "start_postgres",
    "start_prometheus",
    "start_redis",
    "start_s3",
]


@dataclass
class Services:
    """Handles of the services that were asked for; the others are None."""

    postgres: PostgresService | None = None
    redis: RedisService | None = None
    neo4j: Neo4jService | None = None
    prometheus: PrometheusService | None = None


@contextlib.contextmanager
def running_services(workdir: Path, names: tuple[str, ...] = ALL_SERVICES) -> Iterator[Services]:
    """Start the named services under `workdir`; stop every one that started on exit."""
    unknown = set(names) - set(ALL_SERVICES)
    if unknown:
        raise ValueError(f"unknown services {sorted(unknown)}; known: {list(ALL_SERVICES)}")
    services = Services()
    with contextlib.ExitStack() as stack:
        if "postgres" in names:
            services.postgres = start_postgres(workdir / "postgres", cache_dir())
            stack.callback(services.postgres.stop)
        if "redis" in names:
            services.redis = start_redis(workdir / "redis")
            stack.callback(services.redis.stop)
        if "neo4j" in names:
            services.neo4j = start_neo4j(workdir / "neo4j", cache_dir())
            stack.callback(services.neo4j.stop)
        if "prometheus" in names:
            services.prometheus = start_prometheus(workdir / "prometheus")
            stack.callback(services.prometheus.stop)
        yield services
