"""The one table of the kinds the operator touches, and what derives from it.

Every row says how the operator reads a kind (a watch cache of its own, filtered by the API
server on the managed-by label; a kopf watch; or a read on demand), whether it applies
objects of it (a child the builders emit), whether it deletes them when the spec stops asking
for them, and whether the kind comes from an optional CRD that a cluster may not serve.
From the rows derive:

- the watch caches of the children, their pods and the generated Secrets
  (`rag_operator.watches`; optional kinds each start when discovery finds them served);
- which leftovers are pruned (`rag_operator.reconcile`);
- the API paths of the client (`rag_operator.kube.RESOURCES`);
- the verbs of the chart's RBAC (`rag_operator.rbac` writes `charts/ragops/templates/`).

A new child kind is one row here plus its builder; a unit test fails when `desired_children`
emits a kind that has no row, or when the rendered chart does not grant what a row needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from rag_operator.models import API_VERSION, KIND, PLURAL
from rag_operator.models.ragbackup import BACKUP_API_VERSION, BACKUP_KIND, BACKUP_PLURAL


class Read(StrEnum):
    """How the operator learns about objects of a kind."""

    CACHED = "cached"  # a watch cache of the operator's own, label-selected by the API server
    WATCHED = "watched"  # a kopf watch (kopf's own handlers)
    ON_DEMAND = "on-demand"  # GET (or a list) when a pass needs it
    NONE = "none"  # never read (written only)


class Scope(StrEnum):
    """Who the rule is for: the namespaces the operator watches, or the whole cluster."""

    NAMESPACED = "namespaced"
    CLUSTER = "cluster"


@dataclass(frozen=True)
class KindInfo:
    """One kind the operator reads or writes."""

    kind: str
    api_version: str
    plural: str
    read: Read
    child: bool = False  # built by `desired_children` and server-side applied
    prunable: bool = False  # deleted when the spec stops asking for it
    optional_crd: bool = False  # served only when another project's CRD is installed
    scope: Scope = Scope.NAMESPACED
    extra_verbs: frozenset[str] = frozenset()  # verbs beyond those the columns imply
    subresources: tuple[tuple[str, frozenset[str]], ...] = ()
    why: str = ""  # what the operator does with it (a comment in the chart's RBAC)

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def key(self) -> tuple[str, str]:
        return (self.api_version, self.kind)

    @property
    def verbs(self) -> frozenset[str]:
        """The API verbs the operator needs on this kind."""
        verbs = set(self.extra_verbs)
        if self.read in (Read.WATCHED, Read.CACHED):
            verbs |= {"list", "watch"}
        elif self.read is Read.ON_DEMAND:
            verbs |= {"get"}
        if self.child:
            # Server-side apply creates a missing object, which the API server authorizes
            # as "create" besides "patch".
            verbs |= {"create", "patch"}
        if self.prunable:
            verbs.add("delete")
        return frozenset(verbs)


_APPLY_WHY = "children: cached (label-selected watch), server-side applied, pruned"

KINDS: tuple[KindInfo, ...] = (
    # Children that `desired_children` emits.
    KindInfo(
        "ConfigMap",
        "v1",
        "configmaps",
        Read.CACHED,
        True,
        True,
        extra_verbs=frozenset({"get"}),
        why=_APPLY_WHY + "; golden sets of the canary quality gate are read",
    ),
    KindInfo("Service", "v1", "services", Read.CACHED, True, True, why=_APPLY_WHY),
    KindInfo("Deployment", "apps/v1", "deployments", Read.CACHED, True, True, why=_APPLY_WHY),
    KindInfo("StatefulSet", "apps/v1", "statefulsets", Read.CACHED, True, True, why=_APPLY_WHY),
    KindInfo("Job", "batch/v1", "jobs", Read.CACHED, True, True, why=_APPLY_WHY),
    KindInfo("CronJob", "batch/v1", "cronjobs", Read.CACHED, True, True, why=_APPLY_WHY),
    KindInfo(
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
        "horizontalpodautoscalers",
        Read.CACHED,
        True,
        True,
        why=_APPLY_WHY,
    ),
    KindInfo(
        "PodDisruptionBudget",
        "policy/v1",
        "poddisruptionbudgets",
        Read.CACHED,
        True,
        True,
        why=_APPLY_WHY,
    ),
    KindInfo(
        "NetworkPolicy",
        "networking.k8s.io/v1",
        "networkpolicies",
        Read.CACHED,
        True,
        True,
        why=_APPLY_WHY,
    ),
    KindInfo(
        "Ingress", "networking.k8s.io/v1", "ingresses", Read.CACHED, True, True, why=_APPLY_WHY
    ),
    KindInfo(
        "HTTPRoute",
        "gateway.networking.k8s.io/v1",
        "httproutes",
        Read.CACHED,
        True,
        True,
        optional_crd=True,
        why="children from the Gateway API CRDs, when installed",
    ),
    KindInfo(
        "ServiceMonitor",
        "monitoring.coreos.com/v1",
        "servicemonitors",
        Read.CACHED,
        True,
        True,
        optional_crd=True,
        why="children from the Prometheus Operator CRDs, when installed",
    ),
    KindInfo(
        "PrometheusRule",
        "monitoring.coreos.com/v1",
        "prometheusrules",
        Read.CACHED,
        True,
        True,
        optional_crd=True,
        why="children from the Prometheus Operator CRDs, when installed",
    ),
    # Objects the operator needs beside its children.
    KindInfo(
        "Secret",
        "v1",
        "secrets",
        Read.CACHED,
        extra_verbs=frozenset({"get", "create", "patch", "delete"}),
        why="generated credentials (created once, missing keys added, key names cached, "
        "deleted with deletionPolicy Delete); Secrets the spec references are read on demand",
    ),
    KindInfo(
        "Pod",
        "v1",
        "pods",
        Read.CACHED,
        why="readiness of the children's pods (read only)",
    ),
    KindInfo(
        "PersistentVolumeClaim",
        "v1",
        "persistentvolumeclaims",
        Read.ON_DEMAND,
        extra_verbs=frozenset({"list", "patch", "delete"}),
        why="store volumes: grown when storage.size grows, deleted with deletionPolicy Delete",
    ),
    KindInfo(
        "Lease",
        "coordination.k8s.io/v1",
        "leases",
        Read.ON_DEMAND,
        extra_verbs=frozenset({"create", "update"}),
        why="leader election between operator replicas (one Lease, in the operator's namespace)",
    ),
    KindInfo(
        "Event",
        "v1",
        "events",
        Read.NONE,
        extra_verbs=frozenset({"create"}),
        why="Events about RagSystems",
    ),
    KindInfo(
        KIND,
        API_VERSION,
        PLURAL,
        Read.WATCHED,
        extra_verbs=frozenset({"get", "patch"}),
        subresources=(("status", frozenset({"patch"})),),
        why="the RagSystem API: kopf's annotations and finalizer, the status subresource",
    ),
    KindInfo(
        BACKUP_KIND,
        BACKUP_API_VERSION,
        BACKUP_PLURAL,
        Read.WATCHED,
        extra_verbs=frozenset({"get", "patch"}),
        subresources=(("status", frozenset({"patch"})),),
        why="on-demand backups: kopf's annotations, the status subresource; read by restores",
    ),
    KindInfo(
        "Namespace",
        "v1",
        "namespaces",
        Read.WATCHED,
        scope=Scope.CLUSTER,
        why="kopf follows namespaces matching --namespace patterns",
    ),
    KindInfo(
        "CustomResourceDefinition",
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        Read.WATCHED,
        scope=Scope.CLUSTER,
        why="kopf starts watches when an optional CRD is installed",
    ),
)

BY_KIND: dict[str, KindInfo] = {k.kind: k for k in KINDS}
CHILDREN: tuple[KindInfo, ...] = tuple(k for k in KINDS if k.child)
CACHED_CHILDREN: tuple[KindInfo, ...] = tuple(k for k in CHILDREN if k.read is Read.CACHED)
CACHED: tuple[KindInfo, ...] = tuple(k for k in KINDS if k.read is Read.CACHED)
PRUNABLE: frozenset[str] = frozenset(k.kind for k in KINDS if k.prunable)
OPTIONAL: tuple[KindInfo, ...] = tuple(k for k in KINDS if k.optional_crd)


def index_id(info: KindInfo) -> str:
    """The name of the watch cache that holds the objects of one kind."""
    return f"idx_{info.plural}"


@dataclass(frozen=True)
class Capabilities:
    """Which optional kinds the cluster serves (found by API discovery)."""

    served: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, kinds: Iterable[str]) -> Capabilities:
        return cls(frozenset(kinds))

    def serves(self, kind: str) -> bool:
        """Whether objects of `kind` can exist: core kinds always, optional ones when served."""
        info = BY_KIND.get(kind)
        return info is not None and (not info.optional_crd or kind in self.served)


ALL_OPTIONAL = Capabilities.of(k.kind for k in OPTIONAL)
