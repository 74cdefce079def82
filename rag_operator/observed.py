"""Observed state: what the watch caches hold about one RagSystem.

The watch caches (`rag_operator.watches`) keep trimmed, JSON-packed children per
(namespace, instance), the readiness of their pods and the key names of the generated
credentials Secret. `Observed.from_indices` turns them into one `Observed` per pass.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rag_operator.children import CACHED_CHILDREN, index_id
from rag_operator.models.naming import COMPONENT_LABEL, TRACK_LABEL

Key = tuple[str, str]  # (kind, name)
POD_INDEX = "idx_pods"
SECRET_INDEX = "idx_secrets"
_KEPT_METADATA = (
    "name",
    "namespace",
    "labels",
    "annotations",
    "ownerReferences",
    "generation",
    "resourceVersion",
    "uid",
    "deletionTimestamp",
)
_KEPT_STATUS = (
    "observedGeneration",
    "replicas",
    "readyReplicas",
    "updatedReplicas",
    "availableReplicas",
    "conditions",
    # Jobs
    "active",
    "succeeded",
    "failed",
    "startTime",
    "completionTime",
)
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
TERMINATION_MESSAGE_LIMIT = 4096
# Container waiting reasons that mean a pod will not start without a change.
STUCK_WAITING = frozenset(
    {
        "CreateContainerConfigError",
        "ImagePullBackOff",
        "ErrImagePull",
        "CrashLoopBackOff",
        "InvalidImageName",
    }
)


@dataclass(frozen=True)
class PodInfo:
    name: str
    component: str
    ready: bool
    unschedulable: str = ""
    waiting: str = ""
    unschedulable_since: str = ""
    job: str = ""  # the Job that made the pod, if any
    terminated_message: str = ""  # what its container said when it ended (Jobs' pods)
    finished_at: str = ""

    ip: str = ""
    track: str = ""  # label ragops.io/track (canary pods)


def _terminated(status: Mapping[str, Any]) -> tuple[str, str]:
    """(message, finishedAt) of the container that ended last, if any."""
    found: tuple[str, str] = ("", "")
    for cs in status.get("containerStatuses") or []:
        for state in (cs.get("state") or {}, cs.get("lastState") or {}):
            term = state.get("terminated") or {}
            message, at = str(term.get("message") or ""), str(term.get("finishedAt") or "")
            if message and at >= found[1]:
                found = (message[-TERMINATION_MESSAGE_LIMIT:], at)
    return found


@dataclass
class Observed:
    """What the watch caches hold for one RagSystem."""

    children: dict[Key, dict[str, Any]] = field(default_factory=dict)
    pods: list[PodInfo] = field(default_factory=list)
    credentials_keys: frozenset[str] | None = None
    # Key names of the other generated Secrets the caches hold, by Secret name.
    secrets: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_items(
        cls,
        children: Iterable[Mapping[str, Any]],
        pods: Iterable[PodInfo] = (),
        credentials_keys: frozenset[str] | None = None,
        secrets: Mapping[str, frozenset[str]] | None = None,
    ) -> Observed:
        out = cls(pods=list(pods), credentials_keys=credentials_keys, secrets=dict(secrets or {}))
        for child in children:
            out.children[(child["kind"], child["metadata"]["name"])] = dict(child)
        return out

    @classmethod
    def from_indices(
        cls,
        namespace: str,
        name: str,
        credentials: str,
        indices: Mapping[str, Any],
        other_secrets: Iterable[str] = (),
    ) -> Observed:
        """The children, pods and generated Secrets' key names of RagSystem namespace/name."""
        key = (namespace, name)
        children: list[Mapping[str, Any]] = []
        for info in CACHED_CHILDREN:
            store = indices.get(index_id(info)) or {}
            if key in store:
                children.extend(json.loads(packed) for packed in store[key])
        pods: list[PodInfo] = list((indices.get(POD_INDEX) or {}).get(key, []))
        secrets = indices.get(SECRET_INDEX) or {}
        keys = None
        if (namespace, credentials) in secrets:
            keys = next(iter(secrets[(namespace, credentials)]), None)
        others: dict[str, frozenset[str]] = {}
        for other in other_secrets:
            found = next(iter(secrets.get((namespace, other)) or ()), None)
            if found is not None:
                others[other] = found
        return cls.from_items(children, pods, keys, others)


def earlier_system_children(observed: Observed, uid: str) -> list[Key]:
    """Children of an earlier RagSystem of the same name (owned by a RagSystem of another
    uid, none by this one): what the garbage collector has yet to delete after that one
    was deleted. Applying over them would adopt its objects, data included."""
    found = []
    for key, child in observed.children.items():
        owners = (child.get("metadata") or {}).get("ownerReferences") or []
        systems = {o.get("uid") for o in owners if o.get("kind") == "RagSystem"}
        if systems and uid not in systems:
            found.append(key)
    return sorted(found)


def without(observed: Observed, keys: Iterable[Key]) -> Observed:
    """The observed state with those children left out."""
    gone = set(keys)
    kept = {k: v for k, v in observed.children.items() if k not in gone}
    return dataclasses.replace(observed, children=kept)


def trim(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a child the operator compares or reads (keeps the watch cache small)."""
    meta = body.get("metadata") or {}
    out: dict[str, Any] = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in _KEPT_METADATA if k in meta},
    }
    for key in ("spec", "data"):
        if key in body:
            out[key] = body[key]
    status = body.get("status")
    if isinstance(status, Mapping):
        # Only what readiness needs.
        out["status"] = {k: status[k] for k in _KEPT_STATUS if k in status}
    if body.get("kind") == "Secret":
        out.pop("data", None)
    return out


def pod_info(body: Mapping[str, Any]) -> PodInfo:
    """Readiness of one pod, and why it is stuck when it is."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = (conditions.get("Ready") or {}).get("status") == "True"
    sched = conditions.get("PodScheduled") or {}
    unschedulable = since = ""
    if sched.get("status") == "False" and sched.get("reason") == "Unschedulable":
        unschedulable = sched.get("message") or "pod cannot be scheduled"
        since = str(sched.get("lastTransitionTime") or "")
    waiting = ""
    for cs in status.get("containerStatuses") or []:
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason", "")
        if reason in STUCK_WAITING:
            waiting = reason
    labels = meta.get("labels") or {}
    job = next((labels[k] for k in JOB_NAME_LABELS if k in labels), "")
    message, finished = _terminated(status) if job else ("", "")
    return PodInfo(
        name=meta.get("name", ""),
        component=labels.get(COMPONENT_LABEL, ""),
        ready=ready,
        unschedulable=unschedulable,
        waiting=waiting,
        unschedulable_since=since,
        job=job,
        terminated_message=message,
        finished_at=finished,
        ip=str(status.get("podIP") or ""),
        track=labels.get(TRACK_LABEL, ""),
    )
