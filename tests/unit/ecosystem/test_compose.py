"""docker-compose.yml, the local stack for people with Docker.

Aspects covered: it runs the runtime image the operator deploys (the spec's default
repository, tagged with the package version) built from Dockerfile.runtime, and the store
images the operator uses; the API and worker run real CLI commands; every RAG_* variable it
sets is a runtime setting; the API starts after healthy stores and the worker after a healthy
API; published ports are bound to loopback. (compose-go's validator parses it in
tests/integration/ecosystem/test_linters.py.)
"""

from __future__ import annotations

import ast
import tomllib
from typing import Any

import pytest
import yaml

from hack.paths import REPO_ROOT
from rag_operator.models import OperatorConfig
from rag_operator.models.spec import ImageSpec
from rag_runtime.settings import env_names

COMPOSE: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


def cli_commands() -> set[str]:
    tree = ast.parse((REPO_ROOT / "rag_runtime" / "cli.py").read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d) == "app.command()" for d in node.decorator_list)
    }


def test_stack_has_the_api_the_worker_and_the_stores() -> None:
    assert set(SERVICES) == {"api", "worker", "postgres", "redis", "neo4j"}


@pytest.mark.parametrize("service", ["api", "worker"])
def test_runtime_services_run_the_operators_image(service: str) -> None:
    spec = SERVICES[service]
    assert spec["image"] == f"{ImageSpec().repository}:{VERSION}"
    assert spec["build"] == {"context": ".", "dockerfile": "Dockerfile.runtime"}
    assert spec["command"][0] in cli_commands()


@pytest.mark.parametrize("store", ["postgres", "redis", "neo4j"])
def test_stores_use_the_operators_store_images(store: str) -> None:
    assert SERVICES[store]["image"] == getattr(OperatorConfig(), f"{store}_image")
    assert SERVICES[store]["healthcheck"]["test"]


@pytest.mark.parametrize("service", ["api", "worker"])
def test_every_rag_variable_is_a_runtime_setting(service: str) -> None:
    names = {n for n in SERVICES[service]["environment"] if n.startswith("RAG_")}
    assert names
    assert names <= env_names(), sorted(names - env_names())


def test_startup_order_waits_for_health() -> None:
    api = SERVICES["api"]["depends_on"]
    assert {s: c["condition"] for s, c in api.items()} == dict.fromkeys(
        ("postgres", "redis", "neo4j"), "service_healthy"
    )
    assert SERVICES["worker"]["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert SERVICES["api"]["healthcheck"]["test"]


def test_published_ports_are_loopback_only() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_worker_health_is_its_health_endpoint() -> None:
    env = SERVICES["worker"]["environment"]
    assert env["HEALTHCHECK_URL"] == f"http://127.0.0.1:{env['RAG_METRICS_PORT']}/health"
    assert env["RAG_HOST"] == "0.0.0.0"  # its /metrics reachable from other containers
