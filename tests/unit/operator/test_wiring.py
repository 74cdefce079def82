"""Operator wiring that needs no cluster: API paths, configuration, command line, layout.

Aspects covered:
- resource paths for core, grouped, custom and cluster-scoped kinds;
- the configuration: defaults, RAGOPS_* env, flags winning over env, one clear line for a
  bad setting, and nothing written back into the environment;
- discovery of optional CRDs: a change wakes every system (and ends its backoff), no
  change wakes none;
- the configuration reaches kopf through its memo, and no module reads the environment
  (at import time or later) except the settings model;
- no function in rag_operator/ is longer than 60 lines;
- the operator's worker concurrency default is the runtime's measured one, and its enums
  (retrieval strategy, providers) have the runtime's values.
"""

from __future__ import annotations

import ast
import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rag_operator import handlers, main
from rag_operator.children import ALL_OPTIONAL, Capabilities
from rag_operator.kube import resource_path
from rag_operator.models import (
    EmbeddingProvider,
    GenerationProvider,
    OperatorConfig,
    RetrievalStrategy,
)
from rag_operator.models.spec import WorkerSpec
from rag_operator.watches import Caches
from rag_runtime.settings import Settings

PACKAGE = Path(__file__).resolve().parents[3] / "rag_operator"
MAX_FUNCTION_LINES = 60


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("v1", "ConfigMap", "ns", "x"), "/api/v1/namespaces/ns/configmaps/x"),
        (("apps/v1", "Deployment", "ns", None), "/apis/apps/v1/namespaces/ns/deployments"),
        (
            ("ragops.io/v1alpha1", "RagSystem", "ns", "r"),
            "/apis/ragops.io/v1alpha1/namespaces/ns/ragsystems/r",
        ),
        (("v1", "Namespace", None, "ns"), "/api/v1/namespaces/ns"),
        (
            ("policy/v1", "PodDisruptionBudget", "a", "b"),
            "/apis/policy/v1/namespaces/a/poddisruptionbudgets/b",
        ),
    ],
)
def test_resource_paths(args: tuple[str, str, str | None, str | None], path: str) -> None:
    assert resource_path(*args) == path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("RAGOPS_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_command_line_defaults_to_all_namespaces(clean_env: pytest.MonkeyPatch) -> None:
    cfg = main.config_from_args(main.parse_args([]))
    assert cfg.namespaces == ()
    assert cfg.metrics_port == 8080
    assert cfg.liveness_port == 8081
    assert cfg.resync_seconds == 5.0
    assert cfg.ready_timeout_seconds == 300.0


def test_command_line_takes_a_namespace_list(clean_env: pytest.MonkeyPatch) -> None:
    cfg = main.config_from_args(main.parse_args(["-n", "a", "-n", "b", "--resync-seconds", "2"]))
    assert cfg.namespaces == ("a", "b")
    assert cfg.resync_seconds == 2.0


def test_environment_sets_what_flags_do_not(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RAGOPS_RESYNC_SECONDS", "7")
    clean_env.setenv("RAGOPS_DISCOVERY_SECONDS", "3")
    clean_env.setenv("RAGOPS_POSTGRES_IMAGE", "pg:custom")
    cfg = main.config_from_args(main.parse_args(["--discovery-seconds", "9"]))
    assert cfg.resync_seconds == 7.0
    assert cfg.discovery_seconds == 9.0, "a flag wins over the environment"
    assert cfg.postgres_image == "pg:custom"


def test_flags_are_not_written_into_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    before = dict(os.environ)
    main.config_from_args(main.parse_args(["--resync-seconds", "2", "--ready-timeout", "9"]))
    assert dict(os.environ) == before


def test_bad_setting_stops_with_one_line_naming_it(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(["--resync-seconds", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--resync-seconds" in err
    assert "RAGOPS_RESYNC_SECONDS" in err


def test_handlers_take_the_configuration_from_the_memo() -> None:
    cfg = OperatorConfig(resync_seconds=1.5)
    assert handlers._config({"config": cfg}) is cfg


class _Discovering:
    """Serves discovery and empty lists; watches that deliver nothing."""

    def __init__(self, caps: Capabilities) -> None:
        self.caps = caps

    async def discover(self) -> Capabilities:
        return self.caps

    async def list_page(self, *_: Any, **__: Any) -> dict[str, Any]:
        return {"items": [], "metadata": {"resourceVersion": "1"}}

    async def watch(self, *_: Any, **__: Any) -> AsyncIterator[dict[str, Any]]:
        await asyncio.Event().wait()
        yield {}


def _discover_once(caps: Capabilities, state_setup: Any) -> handlers.State:
    async def run() -> handlers.State:
        state = handlers.State(kube=_Discovering(caps), cfg=OperatorConfig())  # type: ignore[arg-type]
        state.caches = Caches(state.kube, (), state.on_change)
        state_setup(state)
        await handlers._discover(state)
        await state.caches.stop()
        return state

    return asyncio.run(run())


def test_a_crd_installed_later_wakes_every_system() -> None:
    wakeup = asyncio.Event()

    def setup(state: handlers.State) -> None:
        state.wakeups[("ns", "rag")] = wakeup
        state.not_before[("ns", "rag")] = float("inf")  # backing off: GatewayAPINotInstalled

    state = _discover_once(ALL_OPTIONAL, setup)
    assert state.caps == ALL_OPTIONAL
    assert wakeup.is_set()
    assert state.not_before == {}


def test_each_optional_kind_is_served_on_its_own() -> None:
    only_monitor = Capabilities.of(["ServiceMonitor"])
    state = _discover_once(only_monitor, lambda _s: None)
    assert state.caps == only_monitor
    assert state.caps.serves("ServiceMonitor")
    assert not state.caps.serves("PrometheusRule")


def test_unchanged_discovery_wakes_nobody() -> None:
    wakeup = asyncio.Event()
    _discover_once(Capabilities(), lambda s: s.wakeups.__setitem__(("ns", "rag"), wakeup))
    assert not wakeup.is_set()


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_only_the_settings_model_reads_the_environment() -> None:
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv"):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, f"read configuration through OperatorConfig: {offenders}"


def test_no_function_is_longer_than_sixty_lines() -> None:
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length})")
    assert not long, f"split these functions: {long}"


def test_worker_concurrency_default_is_the_runtimes() -> None:
    assert WorkerSpec().concurrency == Settings.model_fields["worker_concurrency"].default


@pytest.mark.parametrize(
    ("ours", "field"),
    [
        (RetrievalStrategy, "retrieval_strategy"),
        (EmbeddingProvider, "embedding_provider"),
        (GenerationProvider, "generation_provider"),
    ],
)
def test_enums_have_the_runtimes_values(ours: type, field: str) -> None:
    theirs = Settings.model_fields[field].annotation
    assert isinstance(theirs, type)
    assert {e.value for e in ours} == {e.value for e in theirs}  # type: ignore[attr-defined]


def test_readme_lists_every_flag_and_setting() -> None:
    readme = (PACKAGE.parent / "README.md").read_text()
    for name in OperatorConfig.model_fields:
        assert f"RAGOPS_{name.upper()}" in readme, name
    for flag in [*main.FLAGS, "--leader-election", "--namespace", "--verbose"]:
        assert f"`{flag}" in readme or f"/{flag}" in readme, flag
