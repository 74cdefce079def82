"""Pure builders: RagSystem -> child manifests. No I/O, no kopf, no Kubernetes client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rag_operator.builders.backup import (
    build_backup_cronjob,
    build_backup_job,
    build_restore_job,
)
from rag_operator.builders.common import STORES, child_name, owner_reference, store_mode
from rag_operator.builders.configmap import build_configmap
from rag_operator.builders.deployment import build_api_deployment, build_worker_deployment
from rag_operator.builders.hpa import build_api_hpa
from rag_operator.builders.httproute import build_api_httproute
from rag_operator.builders.ingress import build_api_ingress
from rag_operator.builders.job import build_migration_job
from rag_operator.builders.networkpolicy import (
    build_api_network_policy,
    build_stores_network_policy,
    build_worker_network_policy,
)
from rag_operator.builders.pdb import build_api_pdb, build_worker_pdb
from rag_operator.builders.prometheusrule import build_prometheus_rule
from rag_operator.builders.runtime import RuntimeConfig, runtime_config
from rag_operator.builders.secret import build_credentials_secret
from rag_operator.builders.service import (
    build_api_service,
    build_store_service,
    build_worker_service,
)
from rag_operator.builders.servicemonitor import (
    build_service_monitor,
    build_worker_service_monitor,
)
from rag_operator.builders.statefulset import build_store_statefulset
from rag_operator.builders.storeconfig import build_postgres_init_configmap
from rag_operator.children import Capabilities
from rag_operator.models import OperatorConfig, RagSystem
from rag_operator.models.backup import BackupDestination

__all__ = [
    "Capabilities",
    "Release",
    "RuntimeConfig",
    "build_credentials_secret",
    "desired_children",
    "runtime_config",
]


@dataclass(frozen=True)
class Release:
    """What the release step decided for this pass (`rag_operator.release`)."""

    stable_version: str | None  # version of the API and worker Deployments; None = none yet
    migration_job: str = ""  # name of the migration Job to keep (created when missing)
    migration_version: str = ""  # the version that Job migrates to
    backup_job: str = ""  # name of the pre-upgrade backup Job to keep (created when missing)
    backup_version: str = ""  # the (serving) version that takes it
    # (url, backup name, destination) of the restore Job to keep (created when missing).
    restore_source: tuple[str, str, BackupDestination] | None = None


def desired_children(
    rs: RagSystem,
    cfg: OperatorConfig,
    caps: Capabilities,
    runtime: RuntimeConfig | None = None,
    release: Release | None = None,
) -> list[dict[str, Any]]:
    """Every child the system should have (except the generated Secret), in apply order.

    `caps` says which optional kinds the cluster serves; `runtime` is the pass's derived
    runtime configuration (derived here when not given); `release` says which version the
    Deployments run and which migration Job exists (default: spec.version, no Job).
    """
    spec = rs.spec
    runtime = runtime or runtime_config(rs)
    release = release or Release(stable_version=spec.version)
    out: list[dict[str, Any]] = [build_configmap(rs, runtime)]
    for store in STORES:
        if store_mode(rs, store) == "managed":
            if store == "postgres":
                out.append(build_postgres_init_configmap(rs))
            out.append(build_store_service(rs, store))
            out.append(build_store_statefulset(rs, cfg, store))
    out.append(build_api_service(rs, cfg))
    out.extend(_release_jobs(rs, cfg, runtime, release))
    if release.stable_version is not None:
        out.append(build_api_deployment(rs, cfg, runtime, release.stable_version))
        out.append(build_worker_service(rs, cfg))
        out.append(build_worker_deployment(rs, cfg, runtime, release.stable_version))
    if spec.backup is not None:
        # Backups run the version that serves (its schema); the desired one before that.
        out.append(build_backup_cronjob(rs, cfg, runtime, release.stable_version or spec.version))
    if spec.api.autoscaling.enabled:
        out.append(build_api_hpa(rs, cfg))
    if spec.api.pod_disruption_budget.enabled:
        out.append(build_api_pdb(rs, cfg))
    if spec.worker.pod_disruption_budget.enabled and spec.worker.replicas > 0:
        out.append(build_worker_pdb(rs, cfg))
    if spec.network_policy.enabled:
        out.append(build_api_network_policy(rs, cfg))
        out.append(build_worker_network_policy(rs, cfg))
        out.append(build_stores_network_policy(rs, cfg))
    if spec.api.exposure.ingress is not None:
        out.append(build_api_ingress(rs, cfg))
    if spec.api.exposure.http_route is not None and caps.serves("HTTPRoute"):
        out.append(build_api_httproute(rs, cfg))
    if spec.monitoring.enabled and caps.serves("ServiceMonitor"):
        out.append(build_service_monitor(rs, cfg))
        out.append(build_worker_service_monitor(rs, cfg))
    if spec.monitoring.enabled and spec.monitoring.alerts.enabled and caps.serves("PrometheusRule"):
        out.append(build_prometheus_rule(rs, cfg))
    return out


def _release_jobs(
    rs: RagSystem, cfg: OperatorConfig, runtime: RuntimeConfig, release: Release
) -> list[dict[str, Any]]:
    """The restore, pre-upgrade backup and migration Jobs the release keeps, in that order."""
    spec = rs.spec
    out: list[dict[str, Any]] = []
    if release.restore_source is not None:
        url, name, dest = release.restore_source
        job = child_name(rs, "restore")
        out.append(build_restore_job(rs, runtime, job, spec.version, url, name, dest))
    if release.backup_job and spec.backup is not None:
        job, version, dest = release.backup_job, release.backup_version, spec.backup.destination
        owner = owner_reference(rs)
        out.append(build_backup_job(rs, runtime, owner, job, job, version, dest))
    if release.migration_job:
        job, version = release.migration_job, release.migration_version
        out.append(build_migration_job(rs, cfg, runtime, job, version))
    return out
