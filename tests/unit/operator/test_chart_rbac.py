"""The chart's RBAC in both modes, rendered by the real `helm template`.

Aspects covered: `rbac.scope: cluster` (the default) is one ClusterRole with every rule of
the table, bound to the operator's ServiceAccount; `rbac.scope: namespaced` is a Role with the
namespaced rules, and its RoleBinding, in each watched namespace, plus a ClusterRole holding
only the cluster-scoped reads (no Secrets, nothing namespaced); the operator's `--namespace`
flags match the Roles; the namespaced mode refuses to render without watched namespaces, or
with glob patterns; no rule of either mode uses a verb the table does not declare, and none
is a wildcard.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rag_operator import rbac
from rag_operator.children import Scope
from tests.unit.operator.test_children import _helm

CHART = Path(__file__).resolve().parents[3] / "charts" / "ragops"
NAMESPACES = ("team-a", "team-b")


def _render(*values: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    args = [_helm(), "template", "r", str(CHART), "-n", "ragops-system", "--kube-version=1.37.0"]
    return subprocess.run(
        [*args, *values], capture_output=True, text=True, check=check, timeout=120
    )


def _docs(*values: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(_render(*values).stdout) if d]


def _of(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _rules(scope: Scope) -> list[dict[str, Any]]:
    return [rule for _, rule in rbac.rules(scope)]


def _namespaced_values() -> list[str]:
    out = ["--set", "rbac.scope=namespaced"]
    for i, ns in enumerate(NAMESPACES):
        out += ["--set", f"operator.watchNamespaces[{i}]={ns}"]
    return out


def _operator_args(docs: list[dict[str, Any]]) -> list[str]:
    deployment = _of(docs, "Deployment")[0]
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_cluster_mode_is_one_cluster_role_with_every_rule() -> None:
    docs = _docs()
    (role,) = _of(docs, "ClusterRole")
    assert role["rules"] == _rules(Scope.NAMESPACED) + _rules(Scope.CLUSTER)
    (binding,) = _of(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "r-ragops", "namespace": "ragops-system"}
    ]
    assert _of(docs, "Role") == []
    assert "--all-namespaces" in _operator_args(docs)


def test_namespaced_mode_is_a_role_per_watched_namespace() -> None:
    docs = _docs(*_namespaced_values())
    roles = _of(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == list(NAMESPACES)
    for role in roles:
        assert role["rules"] == _rules(Scope.NAMESPACED)
    bindings = _of(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == list(NAMESPACES)
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "r-ragops",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "r-ragops", "namespace": "ragops-system"}
        ]
    args = _operator_args(docs)
    assert [a for a in args if a.startswith("--namespace")] == [
        f"--namespace={ns}" for ns in NAMESPACES
    ]


def test_namespaced_mode_has_no_cluster_role_with_secret_access() -> None:
    docs = _docs(*_namespaced_values())
    for role in _of(docs, "ClusterRole"):
        assert role["rules"] == _rules(Scope.CLUSTER)
        resources = {r for rule in role["rules"] for r in rule["resources"]}
        assert "secrets" not in resources
        assert resources == {"namespaces", "customresourcedefinitions"}
        verbs = {v for rule in role["rules"] for v in rule["verbs"]}
        assert verbs == {"list", "watch"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "rbac.scope=namespaced"], "needs operator.watchNamespaces"),
        (
            ["--set", "rbac.scope=namespaced", "--set", "operator.watchNamespaces[0]=team-*"],
            "not the pattern",
        ),
        (["--set", "rbac.scope=everywhere"], "/rbac/scope"),
    ],
)
def test_namespaced_mode_refuses_what_it_cannot_grant(values: list[str], message: str) -> None:
    proc = _render(*values, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


@pytest.mark.parametrize("mode", ["cluster", "namespaced"])
def test_no_rule_is_a_wildcard_or_an_unused_verb(mode: str) -> None:
    docs = _docs(*(_namespaced_values() if mode == "namespaced" else []))
    for role in [*_of(docs, "ClusterRole"), *_of(docs, "Role")]:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"]
            assert "*" not in rule["resources"]
            used = {"get", "list", "watch", "create", "patch", "delete"}
            if rule["resources"] == ["leases"]:
                used.add("update")  # leader election renews its Lease with a conditional PUT
            assert set(rule["verbs"]) <= used
