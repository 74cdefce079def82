"""Shared pieces of the RagSystem API: base model, quantities, references, resources."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


class ApiModel(BaseModel):
    """Base of every API model: camelCase on the wire, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        use_enum_values=False,
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it (camelCase, no nulls)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def cel(rule: str, message: str, field_path: str | None = None, **extra: Any) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry."""
    out: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    out.update(extra)
    return out


def validations(*rules: dict[str, Any]) -> dict[str, Any]:
    """`json_schema_extra` carrying CEL rules for a model."""
    return {"x-kubernetes-validations": list(rules)}


class SecretKeyRef(ApiModel):
    """A key of a Secret in the RagSystem's namespace."""

    name: str = Field(
        ..., min_length=1, max_length=253, description="Name of the Secret (same namespace)."
    )
    key: str = Field(..., min_length=1, max_length=253, description="Key inside the Secret.")


class ResourceRequirements(ApiModel):
    """CPU and memory requests and limits of a container, as Kubernetes quantities."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.requests) || !has(self.limits) || "
                "self.limits.all(r, !(r in self.requests) || "
                "quantity(self.requests[r]).compareTo(quantity(self.limits[r])) <= 0)",
                "resources.requests must not exceed resources.limits",
            ),
        )
    )

    requests: dict[str, str] = Field(
        default_factory=dict,
        description="Requested resources, e.g. {cpu: 100m, memory: 256Mi}; used for scheduling.",
        json_schema_extra={
            "additionalProperties": {
                "type": "string",
                "maxLength": 64,
                "x-kubernetes-validations": [
                    cel("isQuantity(self)", "must be a Kubernetes quantity such as 100m or 1Gi")
                ],
            },
            "maxProperties": 8,
        },
    )
    limits: dict[str, str] = Field(
        default_factory=dict,
        description="Resource limits, e.g. {memory: 1Gi}; "
        "the container is throttled or killed above them.",
        json_schema_extra={
            "additionalProperties": {
                "type": "string",
                "maxLength": 64,
                "x-kubernetes-validations": [
                    cel("isQuantity(self)", "must be a Kubernetes quantity such as 100m or 1Gi")
                ],
            },
            "maxProperties": 8,
        },
    )

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.requests:
            out["requests"] = dict(self.requests)
        if self.limits:
            out["limits"] = dict(self.limits)
        return out


def resources(cpu: str, memory: str, memory_limit: str) -> ResourceRequirements:
    return ResourceRequirements(
        requests={"cpu": cpu, "memory": memory}, limits={"memory": memory_limit}
    )
