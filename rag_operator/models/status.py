"""The status of a RagSystem: what the operator observed."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from rag_operator.models.backup import BackupDestination
from rag_operator.models.common import ApiModel


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    READY = "Ready"
    DEGRADED = "Degraded"
    DELETING = "Deleting"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One aspect of the system's state, following the Kubernetes conventions."""

    type: str = Field(..., max_length=316, description="Kind of condition, e.g. Ready, ApiReady.")
    status: ConditionStatus = Field(..., description="True, False or Unknown.")
    reason: str = Field(
        ..., max_length=1024, description="One CamelCase word saying why the status is what it is."
    )
    message: str = Field("", max_length=32768, description="What a human needs to know.")
    observed_generation: int = Field(
        0, ge=0, description="The spec generation this condition was computed from."
    )
    last_transition_time: str = Field(..., description="When status last changed (RFC 3339).")


class ComponentStatus(ApiModel):
    """Ready counts of one component (api, worker, postgres, redis, neo4j)."""

    ready: int = Field(0, ge=0, description="Pods of the component that are ready.")
    desired: int = Field(0, ge=0, description="Pods the component should have.")
    mode: str = Field("", description="managed, external or disabled (stores); empty otherwise.")


class Components(ApiModel):
    """Ready counts per component."""

    api: ComponentStatus | None = Field(None, description="The API Deployment.")
    worker: ComponentStatus | None = Field(None, description="The worker Deployment.")
    postgres: ComponentStatus | None = Field(None, description="Postgres.")
    redis: ComponentStatus | None = Field(None, description="Redis.")
    neo4j: ComponentStatus | None = Field(None, alias="neo4j", description="Neo4j.")


class MigrationPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class MigrationStatus(ApiModel):
    """The schema migration of the desired version: one Job per attempt."""

    version: str = Field("", description="The runtime version whose migration this is.")
    image: str = Field("", description="The image the migration Job runs.")
    job: str = Field("", description="Name of the migration Job of this attempt.")
    phase: MigrationPhase = Field(
        MigrationPhase.PENDING, description="Pending, Running, Succeeded or Failed."
    )
    attempt_generation: int = Field(
        0,
        ge=0,
        description="The spec generation this attempt started at (a failed attempt is "
        "retried when the spec changes).",
    )
    retry_token: str = Field(
        "", description="The ragops.io/retry-migration annotation this attempt started with."
    )
    message: str = Field(
        "", max_length=32768, description="What the Job said: its last log lines on failure."
    )
    backup_job: str = Field(
        "", description="The backup Job taken before this migration (spec.backup.beforeUpgrade)."
    )
    started_at: str = Field("", description="When the attempt's Job was created (RFC 3339).")
    completed_at: str = Field("", description="When the Job succeeded or failed (RFC 3339).")


class BackupStatus(ApiModel):
    """The system's backups, as its backup Jobs (scheduled and on demand) reported them."""

    last_successful_time: str = Field(
        "", description="When the last backup that succeeded completed (RFC 3339)."
    )
    last_failure_time: str = Field("", description="When the last backup failed (RFC 3339).")
    last_job: str = Field("", description="The backup Job that finished last.")
    message: str = Field("", max_length=32768, description="What the last failed backup said.")


class RestoreStatus(ApiModel):
    """The restore of spec.bootstrap.backup (once, before the API and worker start)."""

    phase: MigrationPhase = Field(
        MigrationPhase.PENDING, description="Pending, Running, Succeeded or Failed."
    )
    job: str = Field("", description="The restore Job.")
    source: str = Field("", description="The backup restored: URL and name.")
    url: str = Field("", description="Location of the backups the restore reads.")
    backup_name: str = Field("", description="Name of the backup restored.")
    destination: BackupDestination | None = Field(
        None, description="How the restore reaches the location (endpoint, Secret, volume)."
    )
    message: str = Field("", max_length=32768, description="What the restore said.")
    completed_at: str = Field("", description="When it finished (RFC 3339).")


class RolloutPhase(StrEnum):
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    PROMOTING = "Promoting"
    ROLLED_BACK = "RolledBack"
    SUCCEEDED = "Succeeded"


class Measurement(ApiModel):
    """One metric of one analysis run: the value measured and the limit it was held to."""

    metric: str = Field(..., max_length=63, description="error-rate, latency-p95, ndcg, ...")
    result: str = Field(..., max_length=16, description="pass, fail or nodata.")
    value: float | None = Field(None, description="The measured value; unset = no data.")
    limit: str = Field("", max_length=256, description="What it was compared with.")


class AnalysisRun(ApiModel):
    """One analysis run of the release."""

    time: str = Field(..., description="When the run finished (RFC 3339).")
    step: int = Field(0, ge=0, description="The canary step (1-based; 0 = during the bake).")
    weight: int = Field(0, ge=0, le=100, description="The canary weight during the run.")
    result: str = Field(
        ..., max_length=16, description="pass, fail, nodata or error (Prometheus unreachable)."
    )
    message: str = Field("", max_length=1024, description="What decided the result.")
    measurements: list[Measurement] = Field(
        default_factory=list, max_length=32, description="Each metric's value."
    )


class RolloutRequests(ApiModel):
    """The manual requests (annotations ragops.io/rollout-*) already acted on."""

    promote: str = Field("", max_length=128, description="Last promote token handled.")
    abort: str = Field("", max_length=128, description="Last abort token handled.")
    retry: str = Field("", max_length=128, description="Last retry token handled.")


class RolloutStatus(ApiModel):
    """Where the release of spec.version stands; the operator resumes from it after a restart."""

    phase: RolloutPhase | None = Field(
        None, description="Progressing, Paused, Promoting, RolledBack or Succeeded."
    )
    canary_version: str = Field("", max_length=128, description="The version under release.")
    stable_version: str = Field(
        "", max_length=128, description="The version the stable Deployments run."
    )
    previous_version: str = Field(
        "", max_length=128, description="The stable version before the promotion (bake revert)."
    )
    weight: int = Field(0, ge=0, le=100, description="Percent of traffic the canary receives.")
    step: int = Field(0, ge=0, description="Current canary step, 1-based (0 = none).")
    message: str = Field("", max_length=1024, description="What the release is doing, or why.")
    generation: int = Field(
        0, ge=0, description="metadata.generation the release of canaryVersion started from."
    )
    started_at: str = Field("", description="When the release started (RFC 3339).")
    step_started_at: str = Field("", description="When the current step (or bake) began.")
    last_analysis_at: str = Field("", description="When the last analysis run finished.")
    failures: int = Field(0, ge=0, description="Failed analysis runs in a row.")
    inconclusive: int = Field(0, ge=0, description="Analysis runs in a row without enough data.")
    requests: RolloutRequests = Field(
        default_factory=RolloutRequests, description="Manual requests already handled."
    )
    analysis: list[AnalysisRun] = Field(
        default_factory=list, max_length=20, description="The most recent analysis runs."
    )


class RagSystemStatus(ApiModel):
    """Observed state of the RagSystem; written only by the operator."""

    observed_generation: int = Field(
        0, ge=0, description="The metadata.generation the status reflects."
    )
    phase: Phase = Field(
        Phase.PENDING, description="Pending, Progressing, Ready, Degraded or Deleting."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Progressing, Degraded and one per component (ApiReady, WorkerReady, "
        "PostgresReady, RedisReady, Neo4jReady, ConfigReady); AnonymousAccess is True when "
        "the API serves clients without an API key (spec.api.auth.anonymous).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    components: Components = Field(
        default_factory=Components, description="Ready counts per component."
    )
    ready_summary: str = Field("", description="Ready components out of enabled ones, e.g. 5/5.")
    stores: str = Field(
        "", description="Readiness of the stores, e.g. postgres=1/1,redis=1/1,neo4j=off."
    )
    endpoint: str = Field("", description="In-cluster URL of the API.")
    version: str = Field(
        "",
        description="Runtime version every ready API and worker pod runs (empty while none "
        "does, or while pods of two versions serve).",
    )
    desired_version: str = Field("", description="spec.version: the version asked for.")
    last_good_version: str = Field(
        "", description="The last version at which the whole system was Ready."
    )
    migration: MigrationStatus | None = Field(
        None, description="The schema migration of the desired version."
    )
    restore: RestoreStatus | None = Field(None, description="The restore of spec.bootstrap.backup.")
    backup: BackupStatus | None = Field(
        None, description="Last good and last failed backup (spec.backup and RagBackups)."
    )
    config_hash: str = Field("", description="Hash of the runtime configuration last applied.")
    rollout: RolloutStatus | None = Field(
        None, description="The release of spec.version (canary steps, analysis, rollback)."
    )
