"""Drift detection: when a child must be applied again, and when not.

Aspects covered:
- `matches`: extra observed fields are fine, changed values and missing items are drift,
  quantities compare by value;
- the applied hash: a child whose live annotation is the hash of today's manifest and whose
  fields match is in sync; a spec that only removes list items (namespaces, pull secrets,
  hostnames, parentRefs) changes the hash, so the narrowed child is applied; an unchanged
  spec applies nothing;
- StatefulSet volume claim templates keep their live (immutable) shape.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from rag_operator import drift
from rag_operator.children import Capabilities
from rag_operator.models.naming import APPLIED_HASH_ANNOTATION
from rag_operator.observed import Observed
from rag_operator.reconcile import reconcile
from tests.unit.operator.fakes import FakeKube, converged, ready
from tests.unit.operator.helpers import ALL_CRDS, CFG, children, make_rs

SECRETS = {n: {"data": {"x": "eA=="}} for n in ("r1", "r2")}


@pytest.mark.parametrize(
    ("desired", "observed", "same"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": {"b": "1000m"}}, {"a": {"b": "1"}}, True),
        ({"a": {"b": "1Gi"}}, {"a": {"b": "1024Mi"}}, True),
        ({"a": "512Mi"}, {"a": "1Gi"}, False),
        ({"a": [1, 2]}, {"a": [1]}, False),
        ({"a": [{"n": "x"}]}, {"a": [{"n": "x", "extra": 1}, {"n": "y"}]}, True),
        ({"a": {}}, {}, True),
        ({"a": []}, {}, True),
        ({"a": True}, {"a": 1}, False),
        ({"a": 2}, {"a": 2.0}, True),
        ({"a": "x"}, {}, False),
    ],
)
def test_matches(desired: Any, observed: Any, same: bool) -> None:
    assert drift.matches(desired, observed) is same


@pytest.mark.parametrize(
    ("text", "value"),
    [("1Gi", Decimal(2**30)), ("500m", Decimal("0.5")), ("2", Decimal(2)), ("1k", Decimal(1000))],
)
def test_quantities_parse(text: str, value: Decimal) -> None:
    assert drift.quantity(text) == value


@pytest.mark.parametrize("text", ["", "lots", "Gi", "1.2.3"])
def test_non_quantities_are_none(text: str) -> None:
    assert drift.quantity(text) is None


def _live(manifest: dict[str, Any]) -> dict[str, Any]:
    digest = drift.applied_hash(manifest)
    return ready(drift.stamp(manifest, digest))


def test_child_with_todays_hash_and_fields_is_in_sync() -> None:
    configmap = children(make_rs())[0]
    digest = drift.applied_hash(configmap)
    assert drift.in_sync(drift.stamp(configmap, digest), _live(configmap), digest)


def test_child_without_the_hash_is_applied_once() -> None:
    configmap = children(make_rs())[0]
    digest = drift.applied_hash(configmap)
    assert not drift.in_sync(drift.stamp(configmap, digest), ready(configmap), digest)


def test_hand_edited_field_is_drift_despite_the_hash() -> None:
    configmap = children(make_rs())[0]
    live = _live(configmap)
    live["data"]["RAG_TOP_K"] = "99"
    digest = drift.applied_hash(configmap)
    assert not drift.in_sync(drift.stamp(configmap, digest), live, digest)


def test_stamp_keeps_the_builders_annotations() -> None:
    rs = make_rs(
        {"api": {"exposure": {"ingress": {"host": "a.example.com", "annotations": {"x": "1"}}}}}
    )
    ingress = next(c for c in children(rs) if c["kind"] == "Ingress")
    stamped = drift.stamp(ingress, "abc")
    assert stamped["metadata"]["annotations"] == {"x": "1", APPLIED_HASH_ANNOTATION: "abc"}
    assert (
        "annotations" not in ingress["metadata"]
        or APPLIED_HASH_ANNOTATION not in (ingress["metadata"]["annotations"])
    )


def _observed_after_first_pass(rs: Any, caps: Capabilities) -> Observed:
    """What the watch caches hold after passes applied every child of `rs` (pods ready)."""
    return converged(rs, caps, SECRETS)


def _route(*parents: str, hostnames: tuple[str, ...] = ()) -> dict[str, Any]:
    route: dict[str, Any] = {"parentRefs": [{"name": p} for p in parents]}
    if hostnames:
        route["hostnames"] = list(hostnames)
    return {"api": {"exposure": {"httpRoute": route}}}


NARROWED = [
    (
        {"networkPolicy": {"apiAllowedNamespaces": ["a", "b"]}},
        {"networkPolicy": {"apiAllowedNamespaces": ["a"]}},
        {"NetworkPolicy/demo-api"},
    ),
    (
        {"image": {"pullSecrets": [{"name": "r1"}, {"name": "r2"}]}},
        {"image": {"pullSecrets": [{"name": "r1"}]}},
        {"Deployment/demo-api", "Deployment/demo-worker"},
    ),
    (
        _route("gw", hostnames=("a.example.com", "b.example.com")),
        _route("gw", hostnames=("a.example.com",)),
        {"HTTPRoute/demo-api"},
    ),
    (_route("gw", "gw2"), _route("gw"), {"HTTPRoute/demo-api"}),
]


@pytest.mark.parametrize(
    ("wide", "narrow", "changed"),
    NARROWED,
    ids=["api-allowed-namespaces", "pull-secrets", "hostnames", "parent-refs"],
)
def test_narrowed_list_is_applied(wide: Any, narrow: Any, changed: set[str]) -> None:
    observed = _observed_after_first_pass(make_rs(wide), ALL_CRDS)
    kube = FakeKube(secrets=SECRETS)
    outcome = asyncio.run(reconcile(make_rs(narrow), CFG, kube, observed, ALL_CRDS))  # type: ignore[arg-type]
    assert set(outcome.applied) == changed


@pytest.mark.parametrize(("wide", "_narrow", "_changed"), NARROWED)
def test_unchanged_spec_applies_nothing(wide: Any, _narrow: Any, _changed: Any) -> None:
    rs = make_rs(wide)
    observed = _observed_after_first_pass(rs, ALL_CRDS)
    kube = FakeKube(secrets=SECRETS)
    outcome = asyncio.run(reconcile(rs, CFG, kube, observed, ALL_CRDS))  # type: ignore[arg-type]
    assert outcome.applied == []
    assert kube.applied == []


def test_volume_claim_templates_keep_their_live_shape() -> None:
    rs = make_rs({"postgres": {"managed": {"storage": {"size": "5Gi"}}}})
    sts = next(c for c in children(rs) if c["kind"] == "StatefulSet")
    live = ready(sts)
    live["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "1Gi"
    kept = drift.keep_immutable(sts, live)
    assert drift.claim_size(kept) == "1Gi"
    assert drift.claim_size(sts) == "5Gi"


def _deployment(replicas: int, version: str, digest: str) -> dict[str, Any]:
    return {
        "metadata": {
            "uid": "u-1",
            "resourceVersion": version,
            "annotations": {APPLIED_HASH_ANNOTATION: digest},
        },
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "api"}]}}},
    }


def test_a_child_that_matched_is_not_compared_again_until_it_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    desired = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "api"}]}}}}
    calls: list[int] = []
    real = drift.matches

    def counted(a: Any, b: Any) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(drift, "matches", counted)
    assert drift.in_sync(desired, _deployment(2, "41", "h1"), "h1")
    compared = len(calls)
    assert drift.in_sync(desired, _deployment(2, "41", "h1"), "h1")  # same object: no comparison
    assert len(calls) == compared
    assert not drift.in_sync(desired, _deployment(5, "42", "h1"), "h1")  # scaled by hand
    before = len(calls)
    assert drift.in_sync(desired, _deployment(2, "41", "h2"), "h2")
    assert len(calls) > before  # a new applied hash is compared again


def test_lists_match_in_any_order_and_in_place() -> None:
    desired = [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]
    assert drift.matches(desired, [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}])
    assert drift.matches(desired, [{"name": "b", "value": "2"}, {"name": "a", "value": "1"}])
    assert not drift.matches(desired, [{"name": "b", "value": "2"}, {"name": "a", "value": "9"}])


def test_the_memo_keeps_one_entry_per_child_and_holds_a_large_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    desired = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "api"}]}}}}
    monkeypatch.setattr(drift, "_MATCHED", {})
    for version in range(50):  # status-only writes: a new resourceVersion each, one entry
        assert drift.in_sync(desired, _deployment(2, str(version), "h1"), "h1")
    assert len(drift._MATCHED) == 1
    children = []
    for i in range(6000):  # 1,000 systems' worth of children
        child = _deployment(2, "7", "h1")
        child["metadata"]["uid"] = f"u-{i}"
        children.append(child)
        assert drift.in_sync(desired, child, "h1")
    calls: list[int] = []
    monkeypatch.setattr(drift, "matches", lambda a, b: bool(calls.append(1)))
    assert all(drift.in_sync(desired, child, "h1") for child in children)
    assert calls == []  # every one still remembered: none compared again
