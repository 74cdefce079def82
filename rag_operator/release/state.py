"""The release state machine: pure functions from (rollout status, observations) to the next
status, the serving plan and Events.

Phases: Progressing (a canary at a step's weight under analysis), Paused (a step without a
pause waits for `kubectl ragops promote`, or Prometheus is unreachable), Promoting (stable
runs the new version, the canary is gone, the analysis goes on for the bake time),
RolledBack (the canary failed, or the bake did: weight 0, stable serves the last good
version) and Succeeded.

Rules:
- an analysis run passes, fails, has no data (too few requests) or errs (Prometheus
  unreachable). Only a pass moves a step on, once the step's pause has elapsed. Failed and
  erring runs in a row beyond `failureLimit` roll back; erring runs pause the rollout until
  then. Runs without data in a row beyond `inconclusiveLimit` roll back: no data is never a
  pass, and an unreachable Prometheus never promotes;
- after the last step: promote (stable moves to the canary's version) and bake; a failure
  during the bake reverts stable to the version before the promotion;
- a rolled-back version is not tried again until the spec changes (metadata.generation) or a
  retry is requested (annotation ragops.io/rollout-retry with a new value);
- every clock (step start, last analysis) lives in the status, so an operator restarted at
  any point resumes the same step: a step is taken only by a pass that also writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from rag_operator.models import RagSystem
from rag_operator.models.naming import (
    ABORT_ANNOTATION,
    PROMOTE_ANNOTATION,
    PROMOTE_FULL_PREFIX,
    RETRY_ANNOTATION,
)
from rag_operator.models.rollout import CanarySpec, RolloutStrategy, duration_seconds
from rag_operator.models.status import (
    AnalysisRun,
    Measurement,
    MigrationPhase,
    RolloutPhase,
    RolloutStatus,
)

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
HISTORY = 10
ACTIVE = frozenset({RolloutPhase.PROGRESSING, RolloutPhase.PAUSED, RolloutPhase.PROMOTING})
Result = Literal["pass", "fail", "nodata", "error"]
Event = tuple[str, str, str]


def fmt(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime(TIME_FORMAT)


def parse(text: str) -> float | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Verdict:
    """The outcome of one analysis run."""

    result: Result
    message: str
    measurements: tuple[Measurement, ...] = ()


@dataclass(frozen=True)
class Observation:
    """What one pass saw: the time, the canary's and stable's readiness, an analysis run."""

    now: float
    canary_ready: bool = False
    stable_ready: bool = False
    verdict: Verdict | None = None
    # How long the canary's pods may take to become ready before the canary rolls back.
    ready_timeout_s: float = 300.0


@dataclass(frozen=True)
class Plan:
    """What should serve: stable at its version, and a canary (or none) at a weight."""

    stable_version: str
    canary_version: str | None = None
    weight: int = 0


@dataclass(frozen=True)
class Target:
    """An analysis run that is due: of the canary against stable, or of the bake."""

    mode: Literal["canary", "bake"]
    version: str
    step: int
    weight: int


@dataclass
class Decision:
    status: RolloutStatus
    plan: Plan
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


@dataclass(frozen=True)
class Requests:
    """Manual requests found in the RagSystem's annotations (empty = none)."""

    promote: str = ""
    abort: str = ""
    retry: str = ""

    @classmethod
    def of(cls, annotations: Mapping[str, str]) -> Requests:
        return cls(
            promote=annotations.get(PROMOTE_ANNOTATION, ""),
            abort=annotations.get(ABORT_ANNOTATION, ""),
            retry=annotations.get(RETRY_ANNOTATION, ""),
        )


def canary_may_start(rs: RagSystem, canary_version: str, stable_version: str) -> bool:
    """Whether a canary of `canary_version` may start now: it differs from stable and the
    migration Job of that version has succeeded (status.migration, written by the pass that
    saw the Job complete), so the canary never runs on a schema it has not migrated."""
    if canary_version == stable_version:
        return False
    migration = rs.status.migration
    return (
        migration is not None
        and migration.version == canary_version
        and migration.phase is MigrationPhase.SUCCEEDED
    )


def stable_fallback(rs: RagSystem) -> str:
    """The version stable runs when the status holds no rollout yet."""
    return rs.status.version or rs.spec.version


def current(rs: RagSystem) -> RolloutStatus:
    prev = rs.status.rollout
    if prev is None or not prev.stable_version:
        base = prev or RolloutStatus()
        return base.model_copy(update={"stable_version": stable_fallback(rs)})
    return prev


def plan_of(st: RolloutStatus) -> Plan:
    if st.phase in (RolloutPhase.PROGRESSING, RolloutPhase.PAUSED) and st.canary_version:
        return Plan(st.stable_version, st.canary_version, st.weight)
    return Plan(st.stable_version)


def interval_s(canary: CanarySpec) -> float:
    return max(duration_seconds(canary.analysis.interval), 1.0)


def analysis_due(rs: RagSystem, now: float, canary_ready: bool) -> Target | None:
    """The analysis run this pass should make, judged on the status as it stands."""
    st = current(rs)
    canary = rs.spec.rollout.canary
    started, last = parse(st.step_started_at), parse(st.last_analysis_at)
    if st.phase not in ACTIVE or started is None:
        return None
    if last is not None and now - last < interval_s(canary):
        return None
    if st.phase is RolloutPhase.PROMOTING:
        return Target("bake", st.stable_version, 0, 100)
    if not canary_ready:
        return None
    return Target("canary", st.canary_version, st.step, st.weight)


def decide(rs: RagSystem, obs: Observation) -> Decision:
    """The next rollout status, what should serve, and the Events of this pass."""
    machine = _Machine(rs, obs)
    machine.run()
    status = machine.st
    return Decision(
        status=status,
        plan=plan_of(status),
        events=machine.events,
        requeue_after=_requeue(rs, status, obs.now),
    )


def _requeue(rs: RagSystem, st: RolloutStatus, now: float) -> float | None:
    if st.phase not in ACTIVE:
        return None
    interval = interval_s(rs.spec.rollout.canary)
    last = parse(st.last_analysis_at)
    if last is None:
        return 1.0
    return max(0.5, last + interval - now)


class _Machine:
    """One transition; `st` is the status being built and `events` what to tell the user."""

    def __init__(self, rs: RagSystem, obs: Observation) -> None:
        self.rs = rs
        self.obs = obs
        self.canary = rs.spec.rollout.canary
        self.st = current(rs)
        self.events: list[Event] = []
        self.requests = Requests.of(rs.metadata.annotations)

    # ------------------------------------------------------------------ helpers

    def update(self, **changes: object) -> None:
        self.st = self.st.model_copy(update=changes)

    def handled(self, **tokens: str) -> None:
        self.update(requests=self.st.requests.model_copy(update=tokens))

    def new_request(self, kind: Literal["promote", "abort", "retry"]) -> str:
        token = getattr(self.requests, kind)
        return token if token and token != getattr(self.st.requests, kind) else ""

    @property
    def now(self) -> str:
        return fmt(self.obs.now)

    # ------------------------------------------------------------------ the transition

    def run(self) -> None:
        desired = self.rs.spec.version
        if self.rs.spec.rollout.strategy is RolloutStrategy.ROLLING_UPDATE:
            self.rolling(desired)
            return
        retry = self.new_request("retry")
        if retry:
            self.handled(retry=retry)
        if self.st.phase not in ACTIVE:
            self.idle(desired, bool(retry))
            return
        if self.st.phase is not RolloutPhase.PROMOTING and desired != self.st.canary_version:
            self.changed_mid_canary(desired)
            return
        if self.st.phase is RolloutPhase.PROMOTING and desired != self.st.stable_version:
            self.succeed(f"bake of {self.st.stable_version} cut short by spec.version {desired}")
            self.idle(desired, retry=True)
            return
        abort = self.new_request("abort")
        if abort:
            self.handled(abort=abort)
            self.rollback("aborted by request")
            return
        if self.st.phase is RolloutPhase.PROMOTING:
            self.bake()
        else:
            self.canary_step()

    def rolling(self, desired: str) -> None:
        """RollingUpdate: stable is the spec's version; a canary in flight is withdrawn."""
        if self.st.phase in (RolloutPhase.PROGRESSING, RolloutPhase.PAUSED):
            self.events.append(
                (
                    "Normal",
                    "CanaryWithdrawn",
                    f"canary {self.st.canary_version} withdrawn: strategy RollingUpdate",
                )
            )
        self.st = RolloutStatus(stable_version=desired, requests=self.st.requests)

    def idle(self, desired: str, retry: bool) -> None:
        st = self.st
        self.ignore_requests()
        if desired == st.stable_version:
            return
        blocked = (
            st.phase is RolloutPhase.ROLLED_BACK
            and st.canary_version == desired
            and st.generation == self.rs.metadata.generation
            and not retry
        )
        if blocked:
            return
        if not canary_may_start(self.rs, desired, st.stable_version):
            self.update(message=f"canary {desired} waits to start")
            return
        self.start(desired)

    def ignore_requests(self) -> None:
        """Promote and abort asked while nothing runs are spent, not kept for later."""
        self.handled(promote=self.requests.promote, abort=self.requests.abort)

    def start(self, version: str) -> None:
        self.st = RolloutStatus(
            phase=RolloutPhase.PROGRESSING,
            canary_version=version,
            stable_version=self.st.stable_version,
            step=1,
            weight=0,
            generation=self.rs.metadata.generation,
            started_at=self.now,
            message=f"starting canary {version}: waiting for its pods",
            requests=self.st.requests,
        )
        self.ignore_requests()
        self.events.append(
            ("Normal", "CanaryStarted", f"canary {version} started beside {self.st.stable_version}")
        )

    def changed_mid_canary(self, desired: str) -> None:
        old = self.st.canary_version
        if desired == self.st.stable_version:
            self.events.append(
                (
                    "Normal",
                    "CanaryWithdrawn",
                    f"canary {old} withdrawn: spec.version is back to {desired}",
                )
            )
            self.update(
                phase=None, canary_version="", weight=0, step=0, message=f"canary {old} withdrawn"
            )
            return
        self.events.append(("Normal", "CanaryReplaced", f"canary {old} replaced by {desired}"))
        self.start(desired)

    # ------------------------------------------------------------------ canary steps

    def canary_step(self) -> None:
        st, obs = self.st, self.obs
        if parse(st.step_started_at) is None:
            self.wait_for_canary()
            return
        promote = self.new_request("promote")
        if promote:
            self.handled(promote=promote)
            if promote.startswith(PROMOTE_FULL_PREFIX):
                self.promote("promoted by request")
            else:
                self.advance("step skipped by request")
            return
        verdict = obs.verdict
        if verdict is None:
            return
        self.record(verdict, st.step, st.weight)
        if verdict.result == "pass":
            self.passed()
        else:
            self.not_passed(verdict)

    def wait_for_canary(self) -> None:
        """Weight 0 until the canary's pods are ready; not ready in time rolls back."""
        st, obs = self.st, self.obs
        if obs.canary_ready:
            weight = self.canary.steps[st.step - 1].weight
            self.update(
                weight=weight,
                step_started_at=self.now,
                last_analysis_at=self.now,
                message=f"step {st.step}: canary {st.canary_version} at weight {weight}",
            )
            self.events.append(("Normal", "CanaryStep", self.st.message))
            return
        started = parse(st.started_at) or obs.now
        if obs.now - started > obs.ready_timeout_s:
            self.rollback(f"canary pods not ready within {obs.ready_timeout_s:g}s")

    def passed(self) -> None:
        st = self.st
        self.update(failures=0, inconclusive=0)
        step = self.canary.steps[st.step - 1]
        if step.pause is None:
            self.update(
                phase=RolloutPhase.PAUSED,
                message=f"step {st.step} at weight {st.weight}: analysis passes; waiting for "
                "kubectl ragops promote",
            )
            return
        started = parse(st.step_started_at) or self.obs.now
        if self.obs.now - started >= duration_seconds(step.pause):
            self.advance("analysis passed")
        else:
            self.update(
                phase=RolloutPhase.PROGRESSING,
                message=f"step {st.step} at weight {st.weight}: analysis passes",
            )

    def not_passed(self, verdict: Verdict) -> None:
        st, analysis = self.st, self.canary.analysis
        if verdict.result == "nodata":
            count = st.inconclusive + 1
            self.update(inconclusive=count, message=f"no data ({count} runs): {verdict.message}")
            if count > analysis.inconclusive_limit:
                self.rollback(f"no data in {count} analysis runs in a row: {verdict.message}")
            return
        count = st.failures + 1
        self.update(failures=count, inconclusive=0)
        if count > analysis.failure_limit:
            self.rollback(f"{verdict.message} ({count} failed analysis runs in a row)")
            return
        phase = RolloutPhase.PAUSED if verdict.result == "error" else st.phase
        self.update(
            phase=phase,
            message=f"{verdict.message} ({count} of {analysis.failure_limit + 1} failures "
            "roll back)",
        )

    def advance(self, why: str) -> None:
        st = self.st
        if st.step >= len(self.canary.steps):
            self.promote(why)
            return
        step = st.step + 1
        weight = self.canary.steps[step - 1].weight
        self.update(
            phase=RolloutPhase.PROGRESSING,
            step=step,
            weight=weight,
            step_started_at=self.now,
            failures=0,
            inconclusive=0,
            message=f"step {step}: canary {st.canary_version} at weight {weight} ({why})",
        )
        self.events.append(("Normal", "CanaryStep", self.st.message))

    def promote(self, why: str) -> None:
        st = self.st
        self.update(
            phase=RolloutPhase.PROMOTING,
            previous_version=st.stable_version,
            stable_version=st.canary_version,
            weight=100,
            step_started_at="",
            last_analysis_at=self.now,
            failures=0,
            inconclusive=0,
            message=f"promoting {st.canary_version} ({why}); bake {self.canary.bake_time} "
            "once stable runs it",
        )
        self.events.append(("Normal", "CanaryPromoted", self.st.message))

    # ------------------------------------------------------------------ bake

    def bake(self) -> None:
        st, obs = self.st, self.obs
        if parse(st.step_started_at) is None:
            if obs.stable_ready:
                self.update(
                    step_started_at=self.now,
                    last_analysis_at=self.now,
                    message=f"baking {st.stable_version} for {self.canary.bake_time}",
                )
            return
        if obs.verdict is None:
            return
        self.record(obs.verdict, 0, 100)
        if obs.verdict.result != "pass":
            self.not_passed(obs.verdict)
            return
        self.update(failures=0, inconclusive=0)
        started = parse(st.step_started_at) or obs.now
        if obs.now - started >= duration_seconds(self.canary.bake_time):
            self.succeed(f"{st.stable_version} promoted and baked for {self.canary.bake_time}")

    def succeed(self, message: str) -> None:
        self.update(phase=RolloutPhase.SUCCEEDED, weight=0, message=message)
        self.events.append(("Normal", "RolloutSucceeded", message))

    # ------------------------------------------------------------------ rollback

    def rollback(self, why: str) -> None:
        st = self.st
        if st.phase is RolloutPhase.PROMOTING and st.previous_version:
            failed, back = st.stable_version, st.previous_version
            message = f"bake of {failed} failed, reverted to {back}: {why}"
        else:
            failed, back = st.canary_version, st.stable_version
            message = f"canary {failed} rolled back, {back} keeps serving: {why}"
        self.update(
            phase=RolloutPhase.ROLLED_BACK,
            canary_version=failed,
            stable_version=back,
            weight=0,
            generation=self.rs.metadata.generation,
            message=message[:1024],
        )
        self.events.append(("Warning", "RolledBack", self.st.message))

    def record(self, verdict: Verdict, step: int, weight: int) -> None:
        run = AnalysisRun(
            time=self.now,
            step=step,
            weight=weight,
            result=verdict.result,
            message=verdict.message[:1024],
            measurements=list(verdict.measurements),
        )
        history = [*self.st.analysis, run][-HISTORY:]
        self.update(analysis=history, last_analysis_at=self.now)
