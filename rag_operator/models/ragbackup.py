"""The RagBackup kind: one backup of a RagSystem, on demand (like CloudNativePG's Backup)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rag_operator.models.backup import DNS_SUBDOMAIN, BackupDestination
from rag_operator.models.common import ApiModel
from rag_operator.models.resource import GROUP, VERSION, ObjectMeta
from rag_operator.models.status import Condition

BACKUP_KIND = "RagBackup"
BACKUP_PLURAL = "ragbackups"
BACKUP_SINGULAR = "ragbackup"
BACKUP_SHORT_NAMES = ["ragbk"]
BACKUP_API_VERSION = f"{GROUP}/{VERSION}"


class SystemReference(ApiModel):
    """The RagSystem (same namespace) to back up."""

    name: str = Field(
        ..., min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Its name."
    )


class RagBackupSpec(ApiModel):
    """What to back up and where."""

    system_ref: SystemReference = Field(..., description="The RagSystem to back up.")
    destination: BackupDestination | None = Field(
        None, description="Where the backup goes; unset = the system's spec.backup.destination."
    )


class BackupPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"


class RagBackupStatus(ApiModel):
    """What the operator observed of the backup; written only by the operator."""

    observed_generation: int = Field(0, ge=0, description="The generation the status reflects.")
    phase: BackupPhase = Field(
        BackupPhase.PENDING, description="Pending, Running, Completed or Failed."
    )
    message: str = Field("", max_length=32768, description="What a human needs to know.")
    job: str = Field("", description="The Job that runs the backup.")
    backup_name: str = Field("", description="Name of the backup at its location.")
    location: str = Field("", description="URL of the backup (s3://... or file://...).")
    url: str = Field("", description="The location of the system's backups it was written to.")
    destination: BackupDestination | None = Field(
        None, description="The destination it was written to (endpoint, credentials, volume)."
    )
    started_at: str = Field("", description="When the backup Job started (RFC 3339).")
    completed_at: str = Field("", description="When it completed or failed (RFC 3339).")
    size: str = Field("", description="Size of the backup, e.g. 1.4 GiB.")
    size_bytes: int = Field(0, ge=0, description="Size of the backup in bytes.")
    runtime_version: str = Field("", description="The runtime version that took the backup.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Complete (the backup finished) and Available (its data is stored).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class RagBackup(BaseModel):
    """A parsed RagBackup."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    metadata: ObjectMeta
    spec: RagBackupSpec
    status: RagBackupStatus = Field(default_factory=RagBackupStatus)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> RagBackup:
        try:
            status = RagBackupStatus.model_validate(body.get("status") or {})
        except ValueError:
            status = RagBackupStatus()
        return cls(
            metadata=ObjectMeta.model_validate(body.get("metadata") or {}),
            spec=RagBackupSpec.model_validate(body.get("spec") or {}),
            status=status,
        )

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace
