"""A fake API client for the reconcile tests, and children as the API server shows them."""

from __future__ import annotations

import copy
from typing import Any

from rag_operator.kube import KubeError, check_declared


def ready(child: dict[str, Any]) -> dict[str, Any]:
    """The child as the API server would show it once its pods are ready."""
    out = copy.deepcopy(child)
    out["metadata"]["generation"] = 1
    out["metadata"]["uid"] = "child-uid"
    if child["kind"] in ("Deployment", "StatefulSet"):
        n = child["spec"].get("replicas", 1)
        out["status"] = {
            "observedGeneration": 1,
            "replicas": n,
            "readyReplicas": n,
            "updatedReplicas": n,
            "availableReplicas": n,
        }
    if child["kind"] == "Job":
        out["status"] = {
            "succeeded": 1,
            "conditions": [{"type": "Complete", "status": "True"}],
        }
    return out


class FakeKube:
    """Records calls; serves Secrets from a dict. Refuses verbs `children.KINDS` does not
    declare, as the real client does."""

    def __init__(
        self, secrets: dict[str, dict[str, Any]] | None = None, fail_apply: KubeError | None = None
    ) -> None:
        self.applied: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str]] = []
        self.secrets = secrets or {}
        self.fail_apply = fail_apply
        self.pvcs: list[dict[str, Any]] = []
        self.patched: list[tuple[str, dict[str, Any]]] = []

    async def apply(self, manifest: dict[str, Any], *, subresource: str = "") -> dict[str, Any]:
        check_declared(manifest["apiVersion"], manifest["kind"], "patch", subresource)
        if self.fail_apply:
            raise self.fail_apply
        self.applied.append(manifest)
        return manifest

    async def merge_patch(
        self, manifest: dict[str, Any], patch: dict[str, Any], *, subresource: str = ""
    ) -> dict[str, Any]:
        check_declared(manifest["apiVersion"], manifest["kind"], "patch", subresource)
        self.patched.append((manifest["metadata"]["name"], patch))
        return manifest

    async def create(self, manifest: dict[str, Any]) -> bool:
        check_declared(manifest["apiVersion"], manifest["kind"], "create")
        self.created.append(manifest)
        return True

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        check_declared(api_version, kind, "get")
        return self.secrets.get(name) if kind == "Secret" else None

    async def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        check_declared(api_version, kind, "list")
        wanted = dict(p.split("=", 1) for p in label_selector.split(",") if p)
        items = self.pvcs if kind == "PersistentVolumeClaim" else []
        return [
            i
            for i in items
            if wanted.items() <= ((i.get("metadata") or {}).get("labels") or {}).items()
        ]

    async def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        propagation: str = "Background",
    ) -> bool:
        check_declared(api_version, kind, "delete")
        self.deleted.append((kind, name))
        return True


def created_secrets(kube: FakeKube) -> dict[str, frozenset[str]]:
    """Key names of the Secrets a pass created, as the Secret watch cache holds them."""
    return {
        m["metadata"]["name"]: frozenset(m.get("stringData") or m.get("data") or {})
        for m in kube.created
        if m["kind"] == "Secret"
    }


def converged(
    rs: Any,
    caps: Any,
    secrets: dict[str, dict[str, Any]] | None = None,
    run: Any = None,
) -> Any:
    """The watch caches once passes applied everything and everything became ready: the
    stores first, then the migration Job (after Postgres), then the Deployments (after it)."""
    import asyncio

    from rag_operator.models import OperatorConfig
    from rag_operator.observed import Observed
    from rag_operator.reconcile import reconcile

    seen: dict[tuple[str, str], dict[str, Any]] = {}
    made: dict[str, frozenset[str]] = {}
    for _ in range(4):
        kube = FakeKube(secrets=secrets)
        observed = Observed.from_items(list(seen.values()), [], frozenset({"database-url"}), made)
        asyncio.run(reconcile(rs, OperatorConfig(), kube, observed, caps))  # type: ignore[arg-type]
        made.update(created_secrets(kube))
        if not kube.applied:
            break
        seen.update({(m["kind"], m["metadata"]["name"]): ready(m) for m in kube.applied})
    return Observed.from_items(list(seen.values()), [], frozenset({"database-url"}), made)
