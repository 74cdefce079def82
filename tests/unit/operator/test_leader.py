"""The leader election rule and the Lease it writes (the I/O runs against a real API server
in tests/integration/scale/test_leader_election.py).

Aspects covered:
- a free Lease (no holder, or released) and our own are taken; another holder's is left
  alone until it has gone unrenewed for longer than its leaseDurationSeconds;
- the written Lease names us, carries the duration, keeps the resourceVersion read (so the
  write is conditional), counts a change of holder in leaseTransitions and keeps acquireTime
  on a renewal;
- the operator's flags reach the configuration (--leader-election, --lease-duration).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rag_operator import main
from rag_operator.leader import Decision, Timing, decide, lease_body

NOW = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "unchanged_for", "expected"),
    [
        ({}, 0.0, Decision.TAKE),
        ({"holderIdentity": ""}, 0.0, Decision.TAKE),
        ({"holderIdentity": "me", "leaseDurationSeconds": 8}, 0.0, Decision.TAKE),
        ({"holderIdentity": "other", "leaseDurationSeconds": 8}, 7.9, Decision.WAIT),
        ({"holderIdentity": "other", "leaseDurationSeconds": 8}, 8.1, Decision.TAKE),
    ],
)
def test_decide(spec: dict[str, object], unchanged_for: float, expected: Decision) -> None:
    assert decide(spec, "me", unchanged_for) is expected


def test_taking_over_counts_a_transition_and_keeps_the_version() -> None:
    old = {
        "metadata": {"name": "l", "namespace": "ns", "resourceVersion": "42"},
        "spec": {"holderIdentity": "other", "leaseTransitions": 3, "acquireTime": "old"},
    }
    body = lease_body("l", "ns", "me", Timing(duration_s=8), NOW, old)
    assert body["metadata"]["resourceVersion"] == "42"
    assert body["spec"]["holderIdentity"] == "me"
    assert body["spec"]["leaseTransitions"] == 4
    assert body["spec"]["leaseDurationSeconds"] == 8
    assert body["spec"]["acquireTime"] == body["spec"]["renewTime"] == "2026-01-02T03:04:05.600000Z"


def test_renewing_keeps_acquire_time() -> None:
    old = {
        "metadata": {"resourceVersion": "7"},
        "spec": {"holderIdentity": "me", "acquireTime": "t0"},
    }
    body = lease_body("l", "ns", "me", Timing(), NOW, old)
    assert body["spec"]["acquireTime"] == "t0"
    assert "leaseTransitions" not in body["spec"]


def test_a_new_lease_has_no_version_and_no_transitions() -> None:
    body = lease_body("l", "ns", "me", Timing(), NOW, {})
    assert "resourceVersion" not in body["metadata"]
    assert body["spec"]["leaseTransitions"] == 0


def test_leader_election_flags_reach_the_configuration() -> None:
    args = main.parse_args(
        ["--leader-election", "--lease-duration", "5", "--leader-election-id", "x"]
    )
    cfg = main.config_from_args(args)
    assert cfg.leader_election
    assert cfg.lease_duration_seconds == 5.0
    assert cfg.leader_election_id == "x"
    assert not main.config_from_args(main.parse_args([])).leader_election
