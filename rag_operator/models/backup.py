"""Backups of a RagSystem: `spec.backup` (schedule, retention, destination) and the
`RagBackup` kind (one backup, on demand or from the schedule)."""

from __future__ import annotations

import re

from pydantic import ConfigDict, Field, field_validator, model_validator

from rag_operator.models.common import ApiModel, cel, validations

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# One cron field: *, a number or a name, a range, a step, lists of those.
_ITEM = r"(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?"
_FIELD = rf"{_ITEM}(,{_ITEM})*"
CRON = rf"^(@(yearly|annually|monthly|weekly|daily|hourly)|{_FIELD}( +{_FIELD}){{4}})$"
CRON_MESSAGE = (
    "backup.schedule must be a cron expression of five fields (minute hour day-of-month month "
    "day-of-week), e.g. '0 3 * * *', or @daily, @hourly, @weekly, @monthly, @yearly"
)
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
PREFIX = r"^[A-Za-z0-9!_.*'()/-]*$"


def check_cron(text: str) -> str:
    """`text` when it is a cron schedule the CronJob controller accepts; else ValueError."""
    if not re.fullmatch(CRON, text):
        raise ValueError(CRON_MESSAGE)
    if text.startswith("@"):
        return text
    for value, (low, high) in zip(text.split(), _RANGES, strict=True):
        for item in value.split(","):
            base = item.split("/", 1)[0]
            for number in base.split("-"):
                if number.isdigit() and not low <= int(number) <= high:
                    raise ValueError(f"{CRON_MESSAGE}: {number} is outside {low}-{high}")
    return text


class RetentionSpec(ApiModel):
    """Which backups retention keeps: the newest keepLast and/or those younger than maxAgeDays."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.keepLast) || has(self.maxAgeDays)",
                "backup.retention: set keepLast, maxAgeDays or both",
            )
        )
    )

    keep_last: int | None = Field(
        None, ge=1, le=10000, description="Keep at least the newest N complete backups (>= 1)."
    )
    max_age_days: int | None = Field(
        None, ge=1, le=36500, description="Remove backups older than this many days (>= 1)."
    )

    @model_validator(mode="after")
    def _some(self) -> RetentionSpec:
        if self.keep_last is None and self.max_age_days is None:
            raise ValueError("backup.retention: set keepLast, maxAgeDays or both")
        return self


class S3Destination(ApiModel):
    """S3-compatible object storage."""

    endpoint: str = Field(
        ...,
        max_length=2048,
        pattern=r"^https?://",
        description="URL of the S3 API, e.g. https://s3.eu-west-1.amazonaws.com.",
    )
    bucket: str = Field(..., min_length=3, max_length=63, pattern=BUCKET, description="Bucket.")
    prefix: str = Field(
        "", max_length=512, pattern=PREFIX, description="Key prefix under which backups go."
    )
    region: str | None = Field(None, max_length=64, description="Region (AWS_REGION).")
    credentials_secret_ref: CredentialsRef = Field(
        ...,
        description="Secret with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
    )


class CredentialsRef(ApiModel):
    """A Secret in the RagSystem's namespace."""

    name: str = Field(
        ..., min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Secret name."
    )


class VolumeDestination(ApiModel):
    """A PersistentVolumeClaim in the RagSystem's namespace."""

    claim_name: str = Field(
        ...,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="Name of the PersistentVolumeClaim that holds the backups.",
    )
    path: str = Field(
        "", max_length=512, pattern=PREFIX, description="Directory inside the volume."
    )


class BackupDestination(ApiModel):
    """Where backups go: S3-compatible storage or a volume."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.s3) != has(self.volume)",
                "backup.destination: set exactly one of s3 and volume",
            )
        )
    )

    s3: S3Destination | None = Field(None, description="S3-compatible object storage.")
    volume: VolumeDestination | None = Field(None, description="A PersistentVolumeClaim.")

    @model_validator(mode="after")
    def _one(self) -> BackupDestination:
        if (self.s3 is None) == (self.volume is None):
            raise ValueError("backup.destination: set exactly one of s3 and volume")
        return self


class BackupSpec(ApiModel):
    """Scheduled backups of the system's data (a CronJob) and the pre-upgrade backup."""

    schedule: str = Field(
        ...,
        min_length=1,
        max_length=128,
        pattern=CRON,
        description="Cron schedule of the backups (five fields, or @daily and the like), "
        "in the controller manager's time zone unless timeZone is set.",
    )
    time_zone: str | None = Field(
        None, max_length=64, description="IANA time zone of the schedule, e.g. Europe/Berlin."
    )
    suspend: bool = Field(False, description="Pause the schedule (on-demand backups still run).")
    retention: RetentionSpec = Field(..., description="Which backups to keep.")
    destination: BackupDestination = Field(..., description="Where backups go.")
    before_upgrade: bool = Field(
        True, description="Back up before a migration that changes the schema."
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)


class BackupLocation(ApiModel):
    """A backup named by where it is (for a system whose RagBackup objects are gone)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!self.url.startsWith('s3://') || (has(self.endpoint) && "
                "has(self.credentialsSecretRef))",
                "bootstrap.backup.location: an s3:// url needs endpoint and credentialsSecretRef",
            ),
            cel(
                "!self.url.startsWith('file://') || has(self.claimName)",
                "bootstrap.backup.location: a file:// url needs claimName",
            ),
        )
    )

    url: str = Field(
        ...,
        max_length=2048,
        pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?|file:///backups(/.*)?)$",
        description="Where the system's backups are: s3://BUCKET/PATH or file:///backups/PATH "
        "(the claim is mounted at /backups).",
    )
    backup_name: str = Field(
        ..., min_length=1, max_length=253, description="Name of the backup at that location."
    )
    endpoint: str | None = Field(
        None, max_length=2048, pattern=r"^https?://", description="S3 API URL (s3:// urls)."
    )
    region: str | None = Field(None, max_length=64, description="S3 region (AWS_REGION).")
    credentials_secret_ref: CredentialsRef | None = Field(
        None, description="Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (s3:// urls)."
    )
    claim_name: str | None = Field(
        None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="PersistentVolumeClaim holding the backups (file:// urls).",
    )

    @model_validator(mode="after")
    def _reachable(self) -> BackupLocation:
        s3 = self.url.startswith("s3://")
        if s3 and (self.endpoint is None or self.credentials_secret_ref is None):
            raise ValueError(
                "bootstrap.backup.location: an s3:// url needs endpoint and credentialsSecretRef"
            )
        if not s3 and self.claim_name is None:
            raise ValueError("bootstrap.backup.location: a file:// url needs claimName")
        return self


class BootstrapBackup(ApiModel):
    """The backup a new system starts from: a RagBackup by name, or a location."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.name) != has(self.location)",
                "bootstrap.backup: set exactly one of name and location",
            )
        )
    )

    name: str | None = Field(
        None,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="A completed RagBackup in this namespace.",
    )
    location: BackupLocation | None = Field(None, description="A backup by its location.")

    @model_validator(mode="after")
    def _one(self) -> BootstrapBackup:
        if (self.name is None) == (self.location is None):
            raise ValueError("bootstrap.backup: set exactly one of name and location")
        return self


class BootstrapSpec(ApiModel):
    """How a new system gets its first data; unset = empty."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("self == oldSelf", "bootstrap is immutable: it applies to a new system only")
        )
    )

    backup: BootstrapBackup = Field(
        ..., description="Restore this backup (rag-runtime restore) before the API starts."
    )


S3Destination.model_rebuild()
