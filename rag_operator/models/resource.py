"""The RagSystem object as a whole: API names, metadata, spec and status."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rag_operator.models.spec import RagSystemSpec
from rag_operator.models.status import RagSystemStatus

GROUP = "ragops.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "RagSystem"
PLURAL = "ragsystems"
SINGULAR = "ragsystem"
SHORT_NAMES = ["rag"]


class ObjectMeta(BaseModel):
    """The parts of metadata the operator reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    namespace: str
    uid: str = ""
    generation: int = 0
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    deletion_timestamp: str | None = Field(None, alias="deletionTimestamp")


class RagSystem(BaseModel):
    """A parsed RagSystem: metadata, spec and (current) status."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    metadata: ObjectMeta
    spec: RagSystemSpec
    status: RagSystemStatus = Field(default_factory=RagSystemStatus)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> RagSystem:
        """Parse a RagSystem as the API server returns it; raises pydantic.ValidationError."""
        status = body.get("status") or {}
        try:
            parsed_status = RagSystemStatus.model_validate(status)
        except ValueError:
            parsed_status = RagSystemStatus()
        return cls(
            metadata=ObjectMeta.model_validate(body.get("metadata") or {}),
            spec=RagSystemSpec.model_validate(body.get("spec") or {}),
            status=parsed_status,
        )

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace
