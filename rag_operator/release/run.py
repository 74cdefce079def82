"""One release pass: what the children show, the analysis run when one is due, the decision.

Called by `reconcile` before it builds the children: the decision's plan says which version
stable runs and which canary (at which weight) stands beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rag_operator.builders.common import child_name
from rag_operator.children import Capabilities
from rag_operator.kube import Kube, KubeError
from rag_operator.models import OperatorConfig, RagSystem
from rag_operator.models.status import Measurement
from rag_operator.observed import Observed
from rag_operator.release import analysis, quality
from rag_operator.release.canary import canary_name
from rag_operator.release.probes import (
    ProbeKey,
    ProbeTargets,
    probe_key,
    probe_targets,
    ready_ips,
)
from rag_operator.release.prometheus import Prometheus
from rag_operator.release.state import (
    ACTIVE,
    Decision,
    Observation,
    Target,
    Verdict,
    analysis_due,
    current,
    decide,
    plan_of,
)


@dataclass
class ReleaseOutcome:
    decision: Decision
    verdict: Verdict | None = None
    probes: ProbeTargets | None = None


def _image(dep: Mapping[str, Any] | None) -> str:
    containers = (((dep or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    items = containers.get("containers") or [{}]
    return str(items[0].get("image") or "")


def rolled_out(dep: Mapping[str, Any] | None, image: str) -> bool:
    """The Deployment runs `image` on every pod it wants, all of them ready and available,
    and its controller has seen its latest spec."""
    if dep is None or _image(dep) != image:
        return False
    want = int(((dep.get("spec") or {}).get("replicas")) or 0)
    status = dep.get("status") or {}
    generation = int((dep.get("metadata") or {}).get("generation") or 0)

    def count(key: str) -> int:
        return int(status.get(key) or 0)

    return (
        want > 0
        and count("observedGeneration") >= generation
        and count("readyReplicas") >= want
        and count("updatedReplicas") >= want
        and count("availableReplicas") >= want
        and count("replicas") <= want
    )


def canary_ready(rs: RagSystem, observed: Observed, version: str) -> bool:
    dep = observed.children.get(("Deployment", canary_name(rs)))
    return rolled_out(dep, f"{rs.spec.image.repository}:{version}")


def stable_ready(rs: RagSystem, observed: Observed, version: str) -> bool:
    dep = observed.children.get(("Deployment", child_name(rs, "api")))
    return rolled_out(dep, f"{rs.spec.image.repository}:{version}")


async def quality_measurements(
    rs: RagSystem, kube: Kube, observed: Observed, target: Target, key: ProbeKey
) -> list[Measurement]:
    """The quality gate's measurement (canary runs only, when a gate is configured)."""
    gate = rs.spec.rollout.canary.analysis.quality_gate
    if gate is None or target.mode != "canary":
        return []
    if key.problem:
        return [Measurement(metric="ndcg@10", result="nodata", limit=key.problem[:250])]
    ref = gate.golden_set_ref
    where = f"spec.rollout.canary.analysis.qualityGate.goldenSetRef: ConfigMap {ref.name}"
    nodata = [Measurement(metric="ndcg@10", result="nodata", limit=where)]
    try:
        cm = await kube.get("v1", "ConfigMap", rs.namespace, ref.name)
    except KubeError:
        return nodata
    text = ((cm or {}).get("data") or {}).get(ref.key)
    canary, stable = ready_ips(observed.pods, True), ready_ips(observed.pods, False)
    if not text or not canary or not stable:
        return nodata
    try:
        golden = quality.parse_golden_set(text, where)
    except quality.GoldenSetError:
        return nodata
    return [await quality.run_gate(gate, golden, canary[0], stable[0], key.key)]


async def release_pass(
    rs: RagSystem,
    cfg: OperatorConfig,
    kube: Kube,
    observed: Observed,
    caps: Capabilities,
    prom: Prometheus | None,
    now: float,
) -> ReleaseOutcome:
    st = current(rs)
    before = plan_of(st)
    c_ready = before.canary_version is not None and canary_ready(
        rs, observed, before.canary_version
    )
    target = analysis_due(rs, now, c_ready)
    key: ProbeKey | None = None  # read when the gate or the probes need it
    verdict: Verdict | None = None
    if target is not None:
        key = await probe_key(rs, kube)
        if prom is None:
            verdict = Verdict("error", "the operator has no Prometheus client")
        else:
            extra = await quality_measurements(rs, kube, observed, target, key)
            verdict = await analysis.run(prom, rs, cfg, target, extra)
    obs = Observation(
        now=now,
        canary_ready=c_ready,
        stable_ready=stable_ready(rs, observed, st.stable_version),
        verdict=verdict,
        ready_timeout_s=cfg.ready_timeout_seconds,
    )
    decision = decide(rs, obs)
    active = decision.status.phase in ACTIVE
    if active and key is None:
        key = await probe_key(rs, kube)
    probes = probe_targets(rs, observed, decision.plan, active, key or ProbeKey())
    return ReleaseOutcome(decision, verdict, probes)
