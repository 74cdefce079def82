"""spec.rollout: how a new spec.version reaches the users (rolling update or canary)."""

from __future__ import annotations

import itertools
import re
from enum import StrEnum

from pydantic import ConfigDict, Field, field_validator, model_validator

from rag_operator.models.common import ApiModel, SecretKeyRef, cel, validations

# A Go-style duration of whole units: 500ms, 10s, 2m, 1h30m.
DURATION = r"^([0-9]+(ms|s|m|h))+$"
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
PROMQL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]{0,62}$"
MAX_STEPS = 32


def duration_seconds(text: str) -> float:
    """Seconds of a duration such as 1m30s; ValueError names the text otherwise."""
    if not re.fullmatch(DURATION, text):
        raise ValueError(f"{text!r} is not a duration such as 10s, 2m or 1h30m")
    return sum(int(n) * _UNIT_S[unit] for n, unit in _PART.findall(text))


def _duration(value: str | None) -> str | None:
    if value is not None:
        duration_seconds(value)
    return value


class RolloutStrategy(StrEnum):
    ROLLING_UPDATE = "RollingUpdate"
    CANARY = "Canary"


class CanaryStep(ApiModel):
    """One step of a canary: a share of the traffic, held for a while under analysis."""

    weight: int = Field(
        ..., ge=1, le=100, description="Percent of the traffic the canary gets at this step."
    )
    pause: str | None = Field(
        None,
        max_length=32,
        pattern=DURATION,
        description="How long the step holds (with passing analysis) before the next one, "
        "e.g. 30s or 2m; unset = wait for `kubectl ragops promote`.",
    )

    _pause = field_validator("pause")(_duration)


class ErrorRateCheck(ApiModel):
    """Share of the canary's requests answered with a 5xx status."""

    max: float | None = Field(
        0.05,
        ge=0,
        le=1,
        description="Highest error rate of the canary (0.05 = 5 %); unset = no absolute limit.",
    )
    max_above_stable: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Highest error rate of the canary above stable's, in absolute terms "
        "(0.01 = one point more); unset = not compared with stable.",
    )


class LatencyCheck(ApiModel):
    """95th percentile of the canary's request duration."""

    max_seconds: float | None = Field(
        None, ge=0, description="Highest p95 latency of the canary in seconds; unset = none."
    )
    max_ratio_to_stable: float | None = Field(
        None,
        ge=0,
        description="Highest canary p95 as a multiple of stable's (1.5 = 50 % slower); "
        "unset = not compared with stable.",
    )


class PromQLCheck(ApiModel):
    """A user query; its single value must stay within the bounds."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.min) || has(self.max)",
                "a metric needs min or max (or both)",
                ".max",
            ),
            cel(
                "!has(self.min) || !has(self.max) || self.min <= self.max",
                "metric min must be less than or equal to max",
                ".min",
            ),
        )
    )

    name: str = Field(
        ...,
        min_length=1,
        max_length=63,
        pattern=PROMQL_NAME,
        description="Name of the metric in status and in ragops_operator_rollout_* metrics.",
    )
    query: str = Field(
        ...,
        min_length=1,
        max_length=4096,
        description="PromQL returning one value. $namespace, $canary_pods, $stable_pods and "
        "$window are replaced (pod regexes of the canary and stable API pods).",
    )
    min: float | None = Field(None, ge=0, description="Lowest passing value; unset = none.")
    max: float | None = Field(None, ge=0, description="Highest passing value; unset = none.")

    @model_validator(mode="after")
    def _bounds(self) -> PromQLCheck:
        if self.min is None and self.max is None:
            raise ValueError("a metric needs min or max (or both)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("metric min must be less than or equal to max")
        return self


class ConfigMapKeyRef(ApiModel):
    """A key of a ConfigMap in the RagSystem's namespace."""

    name: str = Field(..., min_length=1, max_length=253, description="Name of the ConfigMap.")
    key: str = Field("golden.json", min_length=1, max_length=253, description="Key inside it.")


class QualityGate(ApiModel):
    """Retrieval quality of the canary against stable's, on a golden set."""

    golden_set_ref: ConfigMapKeyRef = Field(
        ...,
        description='ConfigMap key holding JSON {"collection": "...", "queries": [{"query": '
        '"...", "relevant": ["document id", ...]}]}.',
    )
    min_fraction_of_stable: float = Field(
        0.95,
        ge=0,
        le=1,
        description="Lowest canary nDCG@10 as a fraction of stable's (0.95 = at most 5 % worse).",
    )


class PrometheusSpec(ApiModel):
    """Where the analysis reads metrics."""

    address: str = Field(
        ...,
        min_length=1,
        max_length=2048,
        pattern=r"^https?://",
        description="Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090.",
    )


class AnalysisSpec(ApiModel):
    """What is checked at each interval while a canary runs and during the bake."""

    interval: str = Field(
        "10s", max_length=32, pattern=DURATION, description="Time between analysis runs."
    )
    window: str = Field(
        "30s",
        max_length=32,
        pattern=DURATION,
        description="Range of each query ($window): rates and percentiles over this much time.",
    )
    failure_limit: int = Field(
        1,
        ge=0,
        le=100,
        description="Failed analysis runs in a row that are tolerated; one more rolls back. "
        "Prometheus unreachable counts as failed.",
    )
    inconclusive_limit: int = Field(
        6,
        ge=0,
        le=1000,
        description="Runs in a row without enough data that are tolerated (the step waits and "
        "probes run); one more rolls back. No data is never a pass.",
    )
    min_requests: int = Field(
        10,
        ge=1,
        le=1000000,
        description="Canary requests within the window below which a run has no data.",
    )
    prometheus: PrometheusSpec | None = Field(
        None, description="The Prometheus to query; unset = the operator's RAGOPS_PROMETHEUS_URL."
    )
    error_rate: ErrorRateCheck = Field(
        default_factory=ErrorRateCheck, description="Built-in check of the 5xx rate."
    )
    latency_p95: LatencyCheck = Field(
        default_factory=LatencyCheck, description="Built-in check of the p95 latency."
    )
    metrics: list[PromQLCheck] = Field(
        default_factory=list, max_length=16, description="User PromQL checks."
    )
    quality_gate: QualityGate | None = Field(
        None, description="nDCG@10 of the canary against stable's on a golden set."
    )

    _durations = field_validator("interval", "window")(_duration)


class ProbeSpec(ApiModel):
    """Synthetic queries sent to the canary and stable when real traffic is too thin."""

    rate_per_second: float = Field(
        1.0,
        ge=0,
        le=50,
        description="Probe queries per second to each of canary and stable while data is "
        "short; 0 = no probes. Probes carry the header X-Ragops-Probe.",
    )
    collection: str = Field(
        "default", min_length=1, max_length=128, description="Collection the probes query."
    )
    query: str = Field(
        "ragops canary probe", min_length=1, max_length=1024, description="Text of each probe."
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        None,
        description="Secret key holding the API key the probes and the quality gate send; "
        "unset = the generated admin key. Needed when api.apiKeysSecretRef names the keys.",
    )


_CANARY_STEPS = "self.map(s, s.weight)"


class CanarySpec(ApiModel):
    """The canary's steps, analysis, probes and bake."""

    steps: list[CanaryStep] = Field(
        default_factory=lambda: [
            CanaryStep(weight=10, pause="30s"),
            CanaryStep(weight=30, pause="30s"),
            CanaryStep(weight=60, pause="30s"),
        ],
        min_length=1,
        max_length=MAX_STEPS,
        description="Weights in increasing order, each held for its pause; after the last "
        "step the canary is promoted.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"{_CANARY_STEPS}.isSorted() && "
                    "self.all(s, self.filter(t, t.weight == s.weight).size() == 1)",
                    "rollout.canary.steps: weights must be strictly increasing",
                )
            ]
        },
    )
    analysis: AnalysisSpec = Field(
        default_factory=AnalysisSpec, description="The checks run each interval."
    )
    probes: ProbeSpec = Field(default_factory=ProbeSpec, description="Synthetic probe traffic.")
    bake_time: str = Field(
        "30s",
        max_length=32,
        pattern=DURATION,
        description="Analysis keeps running this long after promotion; a failure reverts to "
        "the previous version.",
    )

    _bake = field_validator("bake_time")(_duration)

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[CanaryStep]) -> list[CanaryStep]:
        weights = [s.weight for s in steps]
        if any(b <= a for a, b in itertools.pairwise(weights)):
            raise ValueError("rollout.canary.steps: weights must be strictly increasing")
        return steps


class RolloutSpec(ApiModel):
    """How a change of spec.version is rolled out."""

    strategy: RolloutStrategy = Field(
        RolloutStrategy.ROLLING_UPDATE,
        description="RollingUpdate (replace pods in place) or Canary (a canary Deployment "
        "under analysis, weights in steps, automatic rollback).",
    )
    canary: CanarySpec = Field(
        default_factory=CanarySpec, description="Steps, analysis and bake of the Canary strategy."
    )
