"""One container of a pod: its process, probes, restarts, exit and termination message.

A :class:`Container` resolves its image to a program, its environment and argv, builds the
launcher's spec (root, mounts, user) and starts the process; then its probes drive
``started`` and ``ready``, a failed startup or liveness probe kills it, and its exit becomes a
``terminated`` state (exit code, ``Completed``/``Error``/``StartError``, the termination
message). Restarts follow the pod's ``restartPolicy`` with the kubelet's back-off: at once,
then 10 s doubling to 5 min, starting over after 10 min of good running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hack.node_agent import network
from hack.node_agent.images import ImageError, ImageProfile
from hack.node_agent.podenv import (
    ConfigError,
    EnvSources,
    container_env,
    expand_argv,
    process_env,
)
from hack.node_agent.podobjects import Objects, passwd_text, pod_ref
from hack.node_agent.podstatus import (
    ContainerView,
    Running,
    State,
    Terminated,
    Waiting,
    now,
)
from hack.node_agent.probes import ProbeResult, Target, run_handler, timing

if TYPE_CHECKING:
    from hack.node_agent.pods import PodWorker

log = logging.getLogger("node-agent.container")

LAUNCHER = Path(__file__).resolve().parent / "launch.py"
FRESH = ("/tmp", "/run", "/var/tmp")
# What the programs of every image run from: this checkout and its environment. A checkout
# under /tmp (a CI clone, say) would vanish behind the pod's fresh /tmp; it is bound back in.
PROGRAM_DIRS = tuple(dict.fromkeys(str(p) for p in (LAUNCHER.parents[2], Path(sys.prefix))))
START_ERROR = 128
MAX_MESSAGE = 4096
FALLBACK_LINES = 80
FALLBACK_BYTES = 2048
RESET_BACKOFF_AFTER_S = 600.0


def exit_code(returncode: int) -> int:
    """A process's exit as a container runtime reports it (128 + signal when signalled)."""
    return 128 - returncode if returncode < 0 else returncode


def backoff_s(restarts: int, initial: float, maximum: float) -> float:
    """Delay before restart number ``restarts + 1``: none, then initial, doubling to maximum."""
    if restarts <= 0:
        return 0.0
    return float(min(maximum, initial * 2 ** (restarts - 1)))


# ---------------------------------------------------------------------------------------------
# One container


class Container:
    """A container of the pod: its process, its probes, its restarts."""

    def __init__(self, worker: PodWorker, spec: Mapping[str, Any], init: bool) -> None:
        self.worker = worker
        self.spec = spec
        self.name: str = spec["name"]
        self.init = init
        self.state: State = Waiting(
            "PodInitializing" if worker.has_init and not init else "ContainerCreating"
        )
        self.last_state: Terminated | None = None
        self.restart_count = 0
        self.ready = False
        self.started = False
        self.image_id = ""
        self.container_id = ""
        self.proc: asyncio.subprocess.Process | None = None
        self.target: Target | None = None
        self.stopping = False
        self.dir = worker.dir / "containers" / self.name
        self.ports = {
            p["name"]: int(p["containerPort"]) for p in spec.get("ports") or [] if p.get("name")
        }
        self._probe_tasks: list[asyncio.Task[None]] = []
        self._started_mono = 0.0
        self._backoff_n = 0
        self.stop_signal = signal.SIGTERM

    # -- status -------------------------------------------------------------------------------

    def view(self) -> ContainerView:
        return ContainerView(
            name=self.name,
            image=self.spec.get("image", ""),
            image_id=self.image_id,
            container_id=self.container_id,
            state=self.state,
            last_state=self.last_state,
            restart_count=self.restart_count,
            ready=self.ready and isinstance(self.state, Running),
            started=self.started and isinstance(self.state, Running),
        )

    def _set(self, state: State) -> None:
        self.state = state
        self.worker.changed()

    def log_path(self, restart: int | None = None) -> Path:
        n = self.restart_count if restart is None else restart
        return self.worker.dir / "logs" / self.name / f"{n}.log"

    # -- start --------------------------------------------------------------------------------

    def _security(self, profile: ImageProfile) -> tuple[int, int, list[int]]:
        pod_sc = (self.worker.pod.get("spec") or {}).get("securityContext") or {}
        sc = self.spec.get("securityContext") or {}
        uid = sc.get("runAsUser", pod_sc.get("runAsUser", profile.user))
        gid = sc.get("runAsGroup", pod_sc.get("runAsGroup", uid if uid else 0))
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot", False))
        if non_root and int(uid) == 0:
            raise ConfigError(
                "container has runAsNonRoot and image will run as root "
                f"(pod: {pod_ref(self.worker.pod)}, container: {self.name})"
            )
        groups = [int(gid)]
        if pod_sc.get("fsGroup") is not None:
            groups.append(int(pod_sc["fsGroup"]))
        groups += [int(g) for g in pod_sc.get("supplementalGroups") or []]
        return int(uid), int(gid), sorted(set(groups))

    def _launch_spec(
        self,
        profile: ImageProfile,
        argv: list[str],
        env: dict[str, str],
        uid: int,
        gid: int,
        groups: list[int],
    ) -> dict[str, Any]:
        w = self.worker
        passwd, group = passwd_text(profile, uid, gid)
        fresh = {}
        for target in FRESH:
            host = self.dir / "fresh" / target.strip("/").replace("/", "-")
            host.mkdir(parents=True, exist_ok=True)
            host.chmod(0o1777)
            fresh[target] = str(host)
        term_path = self.spec.get("terminationMessagePath") or "/dev/termination-log"
        term_file = self.dir / "termination-log"
        term_file.write_bytes(b"")
        term_file.chmod(0o666)
        sc = self.spec.get("securityContext") or {}
        return {
            "netns": str(network.netns_path(w.netns)),
            "cgroup": str(self.cgroup) if self.cgroup else None,
            "hostname": w.hostname,
            "root": {
                "upper": str(self.dir / "upper"),
                "work": str(self.dir / "work"),
                "merged": str(self.dir / "merged"),
                "readonly": bool(sc.get("readOnlyRootFilesystem", False)),
            },
            "hide": list(w.ctx.hide),
            "fresh": fresh,
            "keep": kept_under(FRESH, PROGRAM_DIRS),
            "files": [{"target": term_path, "source": str(term_file)}],
            "write": [
                {"path": "/etc/hosts", "content": w.hosts_text()},
                {"path": "/etc/resolv.conf", "content": w.resolv_text()},
                {"path": "/etc/hostname", "content": w.hostname + "\n"},
                {"path": "/etc/passwd", "content": passwd},
                {"path": "/etc/group", "content": group},
            ],
            "traverse": list(profile.reads),
            "mounts": w.mounts_for(self.spec, env),
            "uid": uid,
            "gid": gid,
            "groups": groups,
            "cwd": self.spec.get("workingDir") or profile.workdir,
            "argv": argv,
            "env": env,
            "error_file": str(self.dir / "start-error"),
        }

    @property
    def cgroup(self) -> Path | None:
        root = self.worker.cgroup
        return None if root is None else root / self.name

    async def start(self, objects: Objects) -> bool:
        """Start the process; False (and a waiting state saying why) when it cannot."""
        w = self.worker
        image = self.spec.get("image", "")
        try:
            profile = w.ctx.image_table().resolve(image)
        except ImageError as exc:
            reason = (
                "ImagePullBackOff"
                if isinstance(self.state, Waiting)
                and self.state.reason in ("ErrImagePull", "ImagePullBackOff")
                else "ErrImagePull"
            )
            if not (
                isinstance(self.state, Waiting)
                and self.state.message == str(exc)
                and self.state.reason == reason
            ):
                w.ctx.event(w.pod, "Warning", "Failed", f"Failed to pull image {image!r}: {exc}")
            self._set(Waiting(reason, str(exc)))
            return False
        try:
            uid, gid, groups = self._security(profile)
            sources = EnvSources(
                configmaps=objects.cm_text,
                secrets=objects.secret_text,
                pod=w.pod,
                pod_ip=str(w.ip),
                host_ip=w.ctx.host_ip,
                services=w.ctx.service_links(w.namespace),
                node_allocatable=w.ctx.node_allocatable,
            )
            env = container_env(self.spec, sources)
            argv = expand_argv(
                profile.argv(self.spec.get("command") or [], self.spec.get("args") or []), env
            )
            if not argv:
                raise ConfigError("no command specified")
        except ConfigError as exc:
            if not (isinstance(self.state, Waiting) and self.state.message == str(exc)):
                w.ctx.event(w.pod, "Warning", "Failed", f"Error: {exc}")
            self._set(Waiting("CreateContainerConfigError", str(exc)))
            return False
        full_env = process_env(profile.env, env)
        home = next((u.home for u in profile.users if u.uid == uid), None)
        if home and "HOME" not in full_env:
            full_env["HOME"] = home
        full_env.setdefault("HOSTNAME", w.hostname)
        try:
            await asyncio.to_thread(self._prepare, profile, argv, full_env, uid, gid, groups)
        except ConfigError as exc:
            self._set(Waiting("CreateContainerConfigError", str(exc)))
            return False
        self.image_id = f"ragops-image://{profile.name}"
        self.stop_signal = signal.Signals[profile.stop_signal]
        log_file = self.log_path()
        log_file.parent.mkdir(parents=True, exist_ok=True)
        out = log_file.open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-S",
                str(LAUNCHER),
                str(self.dir / "launch.json"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        finally:
            out.close()
        self.container_id = f"ragops://{w.uid[:8]}-{self.name}-{self.restart_count}"
        w.ctx.plan.assert_own(str(w.ip), f"probes of {pod_ref(w.pod)}")
        self.target = Target(
            ip=str(w.ip), ports=self.ports, pid=self.proc.pid, env=full_env, uid=uid, gid=gid
        )
        self._started_mono = time.monotonic()
        self.stopping = False
        self.started = "startupProbe" not in self.spec
        self.ready = False
        self._set(Running(now()))
        if not self.init:
            self._start_probes()
        return True

    def _prepare(
        self,
        profile: ImageProfile,
        argv: list[str],
        env: dict[str, str],
        uid: int,
        gid: int,
        groups: list[int],
    ) -> None:
        for sub in ("upper", "work", "fresh"):  # a restarted container starts clean
            shutil.rmtree(self.dir / sub, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "start-error").unlink(missing_ok=True)
        if self.cgroup is not None:
            self.cgroup.mkdir(parents=True, exist_ok=True)
        spec = self._launch_spec(profile, argv, env, uid, gid, groups)
        path = self.dir / "launch.json"
        path.write_text(json.dumps(spec))
        path.chmod(0o600)

    # -- probes -------------------------------------------------------------------------------

    def _start_probes(self) -> None:
        self._stop_probes()
        loop = asyncio.get_running_loop()
        self._probe_tasks = [loop.create_task(self._probes(self.proc))]

    def _stop_probes(self) -> None:
        for task in self._probe_tasks:
            task.cancel()
        self._probe_tasks = []

    async def _probe_loop(
        self, probe: Mapping[str, Any], on_result: Callable[[bool, ProbeResult], Awaitable[bool]]
    ) -> None:
        """Run ``probe`` every period; ``on_result(passed_threshold, result)`` returns False
        to end the loop."""
        t = timing(probe)
        await asyncio.sleep(t.initial_delay)
        successes = failures = 0
        while True:
            assert self.target is not None
            result = await run_handler(probe, self.target, t.timeout)
            if result.ok:
                successes, failures = successes + 1, 0
                if successes >= t.success_threshold and not await on_result(True, result):
                    return
            else:
                failures, successes = failures + 1, 0
                if failures >= t.failure_threshold and not await on_result(False, result):
                    return
            await asyncio.sleep(t.period)

    async def _probes(self, proc: asyncio.subprocess.Process | None) -> None:
        startup = self.spec.get("startupProbe")
        if startup:

            async def on_startup(ok: bool, result: ProbeResult) -> bool:
                if ok:
                    self.started = True
                    self.worker.changed()
                    return False
                await self._unhealthy("Startup", result)
                return False

            await self._probe_loop(startup, on_startup)
            if not self.started:
                return
        tasks = []
        readiness, liveness = self.spec.get("readinessProbe"), self.spec.get("livenessProbe")
        if readiness:

            async def on_ready(ok: bool, result: ProbeResult) -> bool:
                if not ok:
                    self.worker.ctx.event(
                        self.worker.pod,
                        "Warning",
                        "Unhealthy",
                        f"Readiness probe failed: {result.message}",
                    )
                if ok != self.ready:
                    self.ready = ok
                    self.worker.changed()
                return True

            tasks.append(self._probe_loop(readiness, on_ready))
        else:
            self.ready = True
            self.worker.changed()
        if liveness:

            async def on_live(ok: bool, result: ProbeResult) -> bool:
                if ok:
                    return True
                await self._unhealthy("Liveness", result)
                return False

            tasks.append(self._probe_loop(liveness, on_live))
        if tasks:
            await asyncio.gather(*tasks)

    async def _unhealthy(self, kind: str, result: ProbeResult) -> None:
        w = self.worker
        w.ctx.event(w.pod, "Warning", "Unhealthy", f"{kind} probe failed: {result.message}")
        w.ctx.event(
            w.pod,
            "Normal",
            "Killing",
            f"Container {self.name} failed {kind.lower()} probe, will be restarted",
        )
        self.ready = False
        w.changed()
        grace = float((w.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        asyncio.get_running_loop().create_task(self.kill(time.monotonic() + grace, hooks=False))

    # -- exit ---------------------------------------------------------------------------------

    async def wait_exit(self) -> Terminated:
        assert self.proc is not None
        started = self.state.started_at if isinstance(self.state, Running) else now()
        rc = await self.proc.wait()
        self._stop_probes()
        await asyncio.to_thread(self._kill_group)
        code = exit_code(rc)
        message = await asyncio.to_thread(self._termination_message, code)
        if code == START_ERROR and (self.dir / "start-error").exists():
            reason = "StartError"
        else:
            reason = "Completed" if code == 0 else "Error"
        self.ready = False
        return Terminated(
            exit_code=code, reason=reason, started_at=started, finished_at=now(), message=message
        )

    def _termination_message(self, code: int) -> str:
        err = self.dir / "start-error"
        if code == START_ERROR and err.exists():
            return str(err.read_text(errors="replace")[:MAX_MESSAGE])
        try:
            text = (
                (self.dir / "termination-log").read_bytes()[:MAX_MESSAGE].decode(errors="replace")
            )
        except OSError:
            text = ""
        policy = self.spec.get("terminationMessagePolicy", "File")
        if not text and code != 0 and policy == "FallbackToLogsOnError":
            try:
                lines = self.log_path().read_bytes().splitlines()[-FALLBACK_LINES:]
            except OSError:
                lines = []
            text = b"\n".join(lines)[-FALLBACK_BYTES:].decode(errors="replace")
        return str(text)

    def _kill_group(self) -> None:
        """What is left of the container once its main process is gone goes too."""
        if self.cgroup is not None and self.cgroup.exists():
            with contextlib.suppress(OSError):
                (self.cgroup / "cgroup.kill").write_text("1")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _populated(self.cgroup):
                time.sleep(0.02)
        elif self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    async def kill(self, deadline: float, hooks: bool = True) -> None:
        """preStop hook, SIGTERM, and SIGKILL at ``deadline`` (monotonic)."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        self.stopping = True
        pre_stop = ((self.spec.get("lifecycle") or {}).get("preStop")) if hooks else None
        if pre_stop and self.target is not None:
            remaining = max(0.0, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run_handler(pre_stop, self.target, remaining), remaining)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.shield(proc.wait()), max(0.0, deadline - time.monotonic())
            )
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.to_thread(self._kill_group)
            await proc.wait()

    # -- supervision --------------------------------------------------------------------------

    def _should_restart(self, term: Terminated) -> bool:
        policy = self.worker.restart_policy
        if self.init and policy == "Always":
            policy = "OnFailure"  # init containers re-run only until they succeed
        if policy == "Always":
            return True
        if policy == "OnFailure":
            return term.exit_code != 0
        return False

    async def supervise(self) -> None:
        """Run until the container is done for good (or the pod is going away)."""
        w = self.worker
        while not w.deleting.is_set():
            objects = await w.objects()
            if not await self.start(objects):
                await w.wait_retry(2.0)
                continue
            term = await self.wait_exit()
            if self.stopping and w.deleting.is_set():
                self._set(term)
                return
            if not self._should_restart(term):
                self._set(term)
                return
            if time.monotonic() - self._started_mono > RESET_BACKOFF_AFTER_S:
                self._backoff_n = 0  # it ran well for a while: start the back-off over
            delay = backoff_s(self._backoff_n, w.ctx.backoff_initial_s, w.ctx.backoff_max_s)
            self._backoff_n += 1
            self.last_state = term
            self.restart_count += 1
            if delay > 0:
                w.ctx.event(
                    w.pod,
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {self.name} in pod {w.name}",
                )
                self._set(
                    Waiting(
                        "CrashLoopBackOff",
                        f"back-off {delay:g}s restarting failed "
                        f"container={self.name} pod={w.name}_{w.namespace}({w.uid})",
                    )
                )
                await w.wait_deleting(delay)
            else:
                self._set(Waiting("ContainerCreating"))


def _populated(cgroup: Path) -> bool:
    try:
        return "populated 1" in (cgroup / "cgroup.events").read_text()
    except OSError:
        return False


def kept_under(fresh: tuple[str, ...], dirs: tuple[str, ...]) -> list[str]:
    """The program directories that lie under a fresh directory (bound back in, read-only)."""
    return [d for d in dirs if any(d == f or d.startswith(f + "/") for f in fresh)]
