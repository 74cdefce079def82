"""The release in one reconcile pass (fake API, no cluster).

Aspects covered: a new version under the Canary strategy applies a canary Deployment of the
new version while stable keeps the old one, records status.rollout (Progressing, weight 0
until ready) with the Released condition and a CanaryStarted Event; a RollingUpdate system
keeps no rollout status; a rolled-back rollout keeps stable and no canary.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from rag_operator.models import RagSystem
from rag_operator.models.status import RolloutPhase
from rag_operator.observed import Observed, PodInfo
from rag_operator.reconcile import Outcome, reconcile
from tests.unit.operator.fakes import FakeKube, converged, ready
from tests.unit.operator.helpers import CFG, NO_CRDS, make_rs


def _pass(rs: RagSystem, kube: FakeKube, observed: Observed) -> Outcome:
    return asyncio.run(reconcile(rs, CFG, kube, observed, NO_CRDS))  # type: ignore[arg-type]


def _upgrade(spec: dict[str, Any], extra: dict[str, Any] | None = None) -> tuple[Outcome, FakeKube]:
    """0.1.0 running, then `spec` (version 0.2.0) once its migration Job succeeded; `extra`
    is merged into the status the upgrade starts from."""
    observed = converged(make_rs(), NO_CRDS)
    observed.pods.append(PodInfo(name="demo-api-1", component="api", ready=True, ip="10.0.0.1"))
    status = _pass(make_rs(), FakeKube(), observed).status.wire()
    kube = FakeKube()
    started = _pass(make_rs(spec, status={**status, **(extra or {})}), kube, observed)
    job = next(m for m in kube.applied if m["kind"] == "Job")
    observed.children[("Job", job["metadata"]["name"])] = ready(job)
    status = {**started.status.wire(), **(extra or {})}
    migrated = _pass(make_rs(spec, status=status), FakeKube(), observed)  # sees the Job done
    kube = FakeKube({"demo-api-keys": ADMIN_KEY_SECRET})
    status = {**migrated.status.wire(), **(extra or {})}
    outcome = _pass(make_rs(spec, status=status), kube, observed)
    # What runs after the pass: the children left as they were, and those it applied.
    kube.applied = [
        *(m for k, m in observed.children.items() if k[0] == "Deployment"),
        *kube.applied,
    ]
    return outcome, kube


def _images(kube: FakeKube) -> dict[str, str]:
    return {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]["containers"][0]["image"]
        for m in kube.applied
        if m["kind"] == "Deployment"
    }


CANARY = {"version": "0.2.0", "rollout": {"strategy": "Canary"}}
ADMIN_KEY_SECRET = {"data": {"admin-key": base64.b64encode(b"admin-s3cret").decode()}}


def test_new_version_starts_a_canary_beside_stable() -> None:
    outcome, kube = _upgrade(CANARY)
    images = _images(kube)
    assert images["demo-api"].endswith(":0.1.0")
    assert images["demo-worker"].endswith(":0.1.0")
    assert images["demo-canary"].endswith(":0.2.0")
    rollout = outcome.status.rollout
    assert rollout is not None
    assert rollout.phase is RolloutPhase.PROGRESSING
    assert (rollout.canary_version, rollout.stable_version, rollout.weight) == ("0.2.0", "0.1.0", 0)
    released = next(c for c in outcome.status.conditions if c.type == "Released")
    assert released.status.value == "False"
    assert released.reason == "Progressing"
    assert any(e[1] == "CanaryStarted" for e in outcome.events)
    assert outcome.requeue_after is not None
    # Probes from the pass that starts the rollout on, with the system's key (a probe
    # without it gets 401, which would count as canary traffic).
    assert outcome.probes is not None
    assert outcome.probes.key == "admin-s3cret"


def test_rolling_update_keeps_no_rollout_status() -> None:
    outcome, kube = _upgrade({"version": "0.2.0"})
    assert outcome.status.rollout is None
    assert _images(kube)["demo-api"].endswith(":0.2.0")
    assert "demo-canary" not in _images(kube)


def test_rolled_back_keeps_stable_and_no_canary() -> None:
    status = {
        "version": "0.1.0",
        "rollout": {
            "phase": "RolledBack",
            "canaryVersion": "0.2.0",
            "stableVersion": "0.1.0",
            "generation": 1,
            "message": "error-rate 0.5 > 0.05",
        },
    }
    outcome, kube = _upgrade(CANARY, {"rollout": status["rollout"]})
    assert _images(kube)["demo-api"].endswith(":0.1.0")
    assert "demo-canary" not in _images(kube)
    assert outcome.status.rollout is not None
    assert outcome.status.rollout.phase is RolloutPhase.ROLLED_BACK


def test_no_canary_before_its_migration_succeeded() -> None:
    observed = converged(make_rs(), NO_CRDS)
    status = _pass(make_rs(), FakeKube(), observed).status.wire()
    kube = FakeKube()
    outcome = _pass(make_rs(CANARY, status=status), kube, observed)
    assert any(m["kind"] == "Job" for m in kube.applied)  # the migration of 0.2.0 runs first
    assert "demo-canary" not in _images(kube)
    assert (
        outcome.status.rollout is None
        or outcome.status.rollout.canary_version != "0.2.0"
        or (outcome.status.rollout.weight == 0)
    )
