"""The status of a RagSystem: what the operator observed."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

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
    version: str = Field("", description="Runtime version the running pods were built from.")
    config_hash: str = Field("", description="Hash of the runtime configuration last applied.")
