"""The table of kinds (`rag_operator.children`) and everything that derives from it.

Aspects covered:
- every kind `desired_children` can emit (every spec variant, with and without the optional
  CRDs) has a row, as a child; every row's API path is what the client uses;
- every child kind has a watch cache of the operator's own (label-selected by the API
  server), and every prunable kind is cached (so a leftover is seen and deleted: HTTPRoute,
  ServiceMonitor and PrometheusRule included); kopf itself watches no child, pod or Secret;
- the client refuses a verb the table does not declare;
- the chart's RBAC, rendered by the real `helm template`, grants every verb the table
  declares and every watch and patch kopf's registered handlers need, and nothing the
  operator does not use; the generated rules are up to date.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from hack.cluster import bin_dir
from rag_operator import handlers, rbac
from rag_operator.children import (
    BY_KIND,
    CACHED,
    CACHED_CHILDREN,
    CHILDREN,
    KINDS,
    PRUNABLE,
    Capabilities,
    Read,
)
from rag_operator.kube import RESOURCES, UndeclaredAccessError, check_declared, resource_path
from tests.unit.operator.helpers import (
    ALL_CRDS,
    MIGRATING,
    NO_CRDS,
    VARIANTS,
    children,
    make_rs,
)

CHART = Path(__file__).resolve().parents[3] / "charts" / "ragops"
EXTRA_SPECS: list[dict[str, Any]] = [
    {"api": {"autoscaling": {"enabled": True}}},
    {"neo4j": {"enabled": True, "managed": {}}},
    {"api": {"exposure": {"httpRoute": {"parentRefs": [{"name": "gw"}]}}}},
    {"networkPolicy": {"enabled": False}, "api": {"podDisruptionBudget": {"enabled": False}}},
    {
        "backup": {
            "schedule": "@daily",
            "retention": {"keepLast": 3},
            "destination": {"volume": {"claimName": "backups"}},
        }
    },
]


def _emitted() -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    specs = [*VARIANTS.values(), *EXTRA_SPECS]
    for spec in specs:
        for caps in (NO_CRDS, ALL_CRDS):
            for release in (None, MIGRATING):
                emitted = children(make_rs(spec), caps, release)
                out |= {(c["apiVersion"], c["kind"]) for c in emitted}
    return out


def test_every_kind_desired_children_emits_is_a_child_in_the_table() -> None:
    rows = {k.key for k in CHILDREN}
    missing = _emitted() - rows
    assert not missing, f"add these kinds to rag_operator.children.KINDS: {missing}"


def test_every_child_row_is_emitted_by_some_spec() -> None:
    unused = {k.key for k in CHILDREN} - _emitted()
    assert not unused, f"rows no spec variant emits (add a variant or drop the row): {unused}"


def test_client_paths_derive_from_the_table() -> None:
    assert set(RESOURCES) == {k.key for k in KINDS}
    for info in KINDS:
        assert RESOURCES[info.key].plural == info.plural
    path = resource_path("gateway.networking.k8s.io/v1", "HTTPRoute", "ns", "r")
    assert path == "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/r"


def test_every_child_kind_has_a_watch_cache_of_its_own() -> None:
    assert set(CACHED_CHILDREN) == set(CHILDREN)
    assert {k.kind for k in CACHED} == {k.kind for k in CHILDREN} | {"Pod", "Secret"}


def test_kopf_watches_no_cached_kind() -> None:
    assert handlers is not None  # importing it registers kopf's handlers
    registry = kopf.get_default_registry()
    assert not registry._indexing.get_all_handlers()
    cached = {k.plural for k in CACHED}
    for handler in registry._watching.get_all_handlers():
        assert handler.selector is None or handler.selector.plural not in cached


def test_every_prunable_kind_is_cached() -> None:
    for kind in PRUNABLE:
        assert BY_KIND[kind].read is Read.CACHED, kind
    assert {"HTTPRoute", "ServiceMonitor", "PrometheusRule"} <= PRUNABLE


def test_optional_kinds_are_served_only_when_discovered() -> None:
    assert not NO_CRDS.serves("HTTPRoute")
    assert Capabilities.of(["HTTPRoute"]).serves("HTTPRoute")
    assert NO_CRDS.serves("Deployment")
    assert not NO_CRDS.serves("NoSuchKind")


@pytest.mark.parametrize(
    ("api_version", "kind", "verb", "subresource"),
    [
        ("apps/v1", "Deployment", "get", ""),  # children are read from the watch cache
        ("v1", "Pod", "delete", ""),
        ("apps/v1", "Deployment", "update", ""),
        ("ragops.io/v1alpha1", "RagSystem", "delete", ""),
        ("ragops.io/v1alpha1", "RagSystem", "get", "status"),
        ("v1", "Node", "get", ""),
    ],
)
def test_client_refuses_undeclared_verbs(
    api_version: str, kind: str, verb: str, subresource: str
) -> None:
    with pytest.raises(UndeclaredAccessError):
        check_declared(api_version, kind, verb, subresource)


def _helm() -> str:
    found = bin_dir() / "helm"
    if found.exists():
        return str(found)
    on_path = shutil.which("helm")
    assert on_path, f"helm not found in {bin_dir()} or on PATH: run `make setup`"
    return on_path


def _rendered_rules(*values: str) -> list[dict[str, Any]]:
    args = [_helm(), "template", "r", str(CHART), "--kube-version=1.37.0", *values]
    proc = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def _granted(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    out: set[tuple[str, str, str]] = set()
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                out |= {(group, resource, verb) for verb in rule.get("verbs", [])}
    return out


def _needed_by_table() -> set[tuple[str, str, str]]:
    out: set[tuple[str, str, str]] = set()
    for info in KINDS:
        out |= {(info.group, info.plural, verb) for verb in info.verbs}
        for sub, verbs in info.subresources:
            out |= {(info.group, f"{info.plural}/{sub}", verb) for verb in verbs}
    return out


def _resource(handler: Any) -> tuple[str, str]:
    sel = handler.selector
    plural = sel.plural or sel.any_name
    assert sel.group is not None, sel
    assert plural, sel
    return str(sel.group), str(plural)


def _needed_by_kopf() -> set[tuple[str, str, str]]:
    """What kopf does for the handlers registered: list+watch every selected resource,
    patch (annotations, finalizer) the resources of change handlers and daemons."""
    assert handlers is not None
    registry = kopf.get_default_registry()
    out: set[tuple[str, str, str]] = set()
    watching = [
        *registry._indexing.get_all_handlers(),
        *registry._changing.get_all_handlers(),
        *registry._spawning.get_all_handlers(),
    ]
    for handler in watching:
        group, plural = _resource(handler)
        out |= {(group, plural, "list"), (group, plural, "watch")}
    for handler in [*registry._changing.get_all_handlers(), *registry._spawning.get_all_handlers()]:
        out.add((*_resource(handler), "patch"))
    out |= {("", "events", "create")}  # kopf.event
    out |= {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")}
    out |= {("", "namespaces", v) for v in ("list", "watch")}  # --namespace patterns
    return out


def test_chart_rbac_covers_everything_the_operator_does() -> None:
    granted = _granted(_rendered_rules())
    missing = (_needed_by_table() | _needed_by_kopf()) - granted
    assert not missing, f"the chart's ClusterRole lacks {sorted(missing)}"


def test_chart_rbac_grants_nothing_the_operator_does_not_use() -> None:
    extra = _granted(_rendered_rules()) - (_needed_by_table() | _needed_by_kopf())
    assert not extra, f"the chart's ClusterRole grants unused {sorted(extra)}"


def test_chart_rbac_is_optional() -> None:
    args = [_helm(), "template", "r", str(CHART), "--kube-version=1.37.0"]
    proc = subprocess.run(
        [*args, "--set", "rbac.create=false"], capture_output=True, text=True, check=True
    )
    assert "ClusterRole" not in proc.stdout


def test_generated_rbac_rules_are_up_to_date() -> None:
    assert rbac.HELPERS.read_text() == rbac.render_helpers(), "run `make crds` and commit"
