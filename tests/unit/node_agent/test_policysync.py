"""The node agent's policy sync (`hack.node_agent.policysync.PolicyEnforcer`), tables not loaded.

Aspects covered: a selected pod gets its table once; a wake-up that changes nothing policies
look at (a pod's status write) rebuilds no script; a label change or a new policy does; a
table that failed to load is tried again on the next wake-up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hack.node_agent import policysync
from hack.node_agent.netplan import NetPlan
from hack.node_agent.policysync import PolicyEnforcer, PolicyError, Sandbox

PLAN = NetPlan(slot=5, cluster_id="05ef")
NAMESPACES = [{"metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team"}}}]
POLICY = {
    "metadata": {"name": "deny", "namespace": "team"},
    "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"]},
}


def _box(labels: dict[str, str], phase: str = "Running") -> Sandbox:
    ip = str(PLAN.real_node_cidrs[0][10])
    pod: dict[str, Any] = {
        "metadata": {"name": "db-0", "namespace": "team", "uid": "u1", "labels": labels},
        "spec": {"containers": [{"name": "db"}]},
        "status": {"phase": phase},
    }
    return Sandbox(uid="u1", pod=pod, ip=ip, netns="ragops-test-db-0")


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Scripts 'loaded' (the netns exists, nft is not run)."""
    scripts: list[str] = []
    monkeypatch.setattr(policysync.network, "netns_path", lambda _name: tmp_path)
    monkeypatch.setattr(policysync, "apply_script", lambda _ns, script: scripts.append(script))
    return scripts


def test_a_status_write_rebuilds_nothing_a_label_change_does(
    loaded: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    real = policysync.netpolicy.nft_script

    def counted(*args: Any) -> str:
        built.append(real(*args))
        return built[-1]

    monkeypatch.setattr(policysync.netpolicy, "nft_script", counted)
    enforcer = PolicyEnforcer(PLAN)
    changes = enforcer.refresh([_box({"app": "db"})], NAMESPACES, [POLICY])
    assert len(changes) == 1
    assert asyncio.run(enforcer.apply(changes)) is True
    assert len(loaded) == len(built) == 1
    assert enforcer.refresh([_box({"app": "db"})], NAMESPACES, [POLICY]) == []  # in step
    assert len(built) == 2

    assert enforcer.refresh([_box({"app": "db"}, phase="Succeeded")], NAMESPACES, [POLICY]) == []
    assert len(built) == 2  # nothing policies look at changed: no script rebuilt

    relabelled = enforcer.refresh([_box({"app": "web"})], NAMESPACES, [POLICY])
    assert len(relabelled) == 1
    assert relabelled[0][1] != loaded[0]  # no longer selected: the table lets all in


def test_what_a_new_sandbox_left_unapplied_is_applied_next(loaded: list[str]) -> None:
    """A new pod loads only its own table before it starts; the server it may reach must
    still get its new rule on the next refresh (the same view)."""
    server = _box({"app": "db"})
    policy = {
        "metadata": {"name": "db", "namespace": "team"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}],
        },
    }
    enforcer = PolicyEnforcer(PLAN)
    asyncio.run(enforcer.apply(enforcer.refresh([server], NAMESPACES, [policy])))
    client_pod = {
        "metadata": {"name": "web", "namespace": "team", "uid": "u2", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web"}]},
    }
    client = Sandbox("u2", client_pod, str(PLAN.real_node_cidrs[0][11]), "ragops-test-web")
    both = enforcer.refresh([server, client], NAMESPACES, [policy])
    assert {box.uid for box, _ in both} == {"u1", "u2"}
    asyncio.run(enforcer.apply([c for c in both if c[0].uid == "u2"]))  # as isolate() does
    again = enforcer.refresh([server, client], NAMESPACES, [policy])
    assert [box.uid for box, _ in again] == ["u1"]
    assert client.ip in again[0][1]


def test_a_new_policy_changes_the_table(loaded: list[str]) -> None:
    enforcer = PolicyEnforcer(PLAN)
    asyncio.run(enforcer.apply(enforcer.refresh([_box({"app": "db"})], NAMESPACES, [])))
    assert len(enforcer.refresh([_box({"app": "db"})], NAMESPACES, [POLICY])) == 1


def test_a_table_that_failed_to_load_is_tried_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fail(_ns: str, _script: str) -> None:
        raise PolicyError("nft: no such table")

    monkeypatch.setattr(policysync.network, "netns_path", lambda _name: tmp_path)
    monkeypatch.setattr(policysync, "apply_script", fail)
    enforcer = PolicyEnforcer(PLAN)
    changes = enforcer.refresh([_box({"app": "db"})], NAMESPACES, [POLICY])
    assert asyncio.run(enforcer.apply(changes)) is False
    assert enforcer.refresh([_box({"app": "db"})], NAMESPACES, [POLICY]) == changes
