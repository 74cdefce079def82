"""The operator's watch caches, as data (no API server here; tests/integration covers the
real list+watch against a real one).

Aspects covered:
- a cache keeps one small value per object, indexed by (namespace, instance) for children
  and pods and by (namespace, name) for Secrets, whose values are never kept (key names only);
- watch events add, change and remove entries; an unchanged object or a bookmark changes
  nothing (so no reconcile is woken);
- a fresh list replaces the cache and reports exactly the systems whose objects changed (a
  relist after 410 wakes only what differs);
- literal namespaces are listed one by one; glob patterns list everything and filter;
- the backoff doubles to its cap and starts again after a reset;
- a kind's view is true when any system has objects of it, told without listing every key
  (every pass asks, so that must not cost more as the cluster grows).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import pytest

from rag_operator.children import BY_KIND
from rag_operator.observed import PodInfo
from rag_operator.watches import (
    Backoff,
    IndexView,
    Store,
    WatchCache,
    namespace_plan,
    shape_of,
)


def _obj(kind: str, name: str, instance: str | None = "rag", **extra: Any) -> dict[str, Any]:
    labels = {"app.kubernetes.io/instance": instance} if instance else {}
    return {
        "apiVersion": BY_KIND[kind].api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns", "labels": labels, "resourceVersion": "1"},
        **extra,
    }


def test_children_are_indexed_by_instance_and_packed() -> None:
    store = Store(shape_of(BY_KIND["ConfigMap"]))
    assert store.put(_obj("ConfigMap", "rag-config", data={"a": "1"})) == [("ns", "rag")]
    packed = store.index[("ns", "rag")]["rag-config"]
    assert json.loads(packed)["data"] == {"a": "1"}


def test_secrets_keep_key_names_only_and_wake_their_system() -> None:
    store = Store(shape_of(BY_KIND["Secret"]))
    woken = store.put(_obj("Secret", "rag-credentials", data={"password": "c2VjcmV0"}))
    assert woken == [("ns", "rag")]
    assert store.index[("ns", "rag-credentials")] == {"rag-credentials": frozenset({"password"})}
    assert "c2VjcmV0" not in repr(store.objects)


def test_pods_keep_their_readiness() -> None:
    store = Store(shape_of(BY_KIND["Pod"]))
    status = {"conditions": [{"type": "Ready", "status": "True"}]}
    store.put(_obj("Pod", "rag-api-1", status=status))
    (info,) = store.index[("ns", "rag")].values()
    assert isinstance(info, PodInfo)
    assert info.ready


def test_events_add_change_and_remove() -> None:
    store = Store(shape_of(BY_KIND["Service"]))
    svc = _obj("Service", "rag-api", spec={"ports": [{"port": 80}]})
    assert store.apply({"type": "ADDED", "object": svc}) == [("ns", "rag")]
    assert store.apply({"type": "MODIFIED", "object": svc}) == []  # nothing changed
    assert store.apply({"type": "BOOKMARK", "object": {"metadata": {}}}) == []
    changed = {**svc, "spec": {"ports": [{"port": 81}]}}
    assert store.apply({"type": "MODIFIED", "object": changed}) == [("ns", "rag")]
    assert store.apply({"type": "DELETED", "object": changed}) == [("ns", "rag")]
    assert store.index == {}
    assert store.objects == {}


def test_an_object_that_loses_its_instance_label_leaves_the_index() -> None:
    store = Store(shape_of(BY_KIND["Service"]))
    store.put(_obj("Service", "x"))
    assert store.put(_obj("Service", "x", instance=None)) == [("ns", "rag")]
    assert store.index == {}


def test_a_fresh_list_reports_only_what_changed() -> None:
    store = Store(shape_of(BY_KIND["ConfigMap"]))
    store.put(_obj("ConfigMap", "a-config", instance="a"))
    store.put(_obj("ConfigMap", "b-config", instance="b"))
    fresh = [
        _obj("ConfigMap", "a-config", instance="a"),
        _obj("ConfigMap", "c-config", instance="c"),
    ]
    assert store.replace(fresh) == {("ns", "b"), ("ns", "c")}
    assert set(store.index) == {("ns", "a"), ("ns", "c")}


def test_namespaces_literal_are_listed_one_by_one_globs_filtered() -> None:
    where, accept = namespace_plan(("team-a", "team-b"))
    assert where == ["team-a", "team-b"]
    where, accept = namespace_plan(("team-*",))
    assert where == [None]
    assert accept("team-x")
    assert not accept("other")
    where, accept = namespace_plan(())
    assert where == [None]
    assert accept("anything")


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = Backoff(first=1.0, cap=8.0)
    delays = [backoff.next() for _ in range(6)]
    assert 0.8 <= delays[0] <= 1.2
    assert 1.6 <= delays[1] <= 2.4
    assert all(d <= 8.0 * 1.2 for d in delays)
    assert delays[-1] >= 8.0 * 0.8
    backoff.reset()
    assert backoff.next() <= 1.2


def test_a_view_is_true_without_listing_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    empty, full = Store(shape_of(BY_KIND["Service"])), Store(shape_of(BY_KIND["Service"]))
    for i in range(500):
        full.put(_obj("Service", f"rag-{i}-api", instance=f"rag-{i}"))
    caches = [cast(WatchCache, SimpleNamespace(store=s)) for s in (empty, full)]

    def no_listing(self: IndexView) -> Any:
        raise AssertionError("truth must not iterate every key")

    monkeypatch.setattr(IndexView, "__iter__", no_listing)
    monkeypatch.setattr(IndexView, "__len__", no_listing)
    assert IndexView(caches)
    assert not IndexView(caches[:1])
    assert not IndexView([])
    assert ("ns", "rag-7") in IndexView(caches)
