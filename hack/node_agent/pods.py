"""One pod, run the way a kubelet runs it, with processes instead of containers.

A :class:`PodWorker` owns a pod from the moment it is bound to one of the agent's nodes:
sandbox (address, network namespace, ``/etc/hosts`` and ``resolv.conf``), volumes, init
containers in order, then the app containers, each supervised by a :class:`Container` (start,
probes, restarts with back-off, exit codes and termination messages). It writes the pod's
status whenever what it knows changes. When the pod is deleted it runs the preStop hooks,
sends SIGTERM, waits for the grace period, sends SIGKILL, removes the sandbox and the pod's
directory, and finally deletes the pod object, as the kubelet does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from hack.node_agent import network, reaper
from hack.node_agent.container import Container
from hack.node_agent.images import ImageTable
from hack.node_agent.kubeapi import STRATEGIC, Api, ApiError
from hack.node_agent.netplan import NetPlan
from hack.node_agent.podenv import (
    ConfigError,
    ServiceLink,
    expand,
    parse_quantity,
)
from hack.node_agent.podobjects import Objects, fetch_objects, pod_path, pod_ref
from hack.node_agent.podstatus import (
    PodView,
    Terminated,
    Waiting,
    now,
    pod_status,
)
from hack.node_agent.podvolumes import (
    FileSources,
    apply_fs_group,
    claim_name,
    make_dir_volume,
    plan_files,
    volume_kind,
    write_atomic,
)

log = logging.getLogger("node-agent.pods")

VOLUME_REFRESH_S = 5.0


class Context(Protocol):
    """What a pod worker needs from the agent."""

    api: Api
    plan: NetPlan
    work_dir: Path
    claims_dir: Path
    hide: tuple[str, ...]
    cgroup_root: Path | None
    backoff_initial_s: float
    backoff_max_s: float
    host_ip: str

    def image_table(self) -> ImageTable: ...

    def service_links(self, namespace: str) -> tuple[ServiceLink, ...]: ...

    def allocate_ip(self, node: str) -> ipaddress.IPv4Address: ...

    def release_ip(self, ip: ipaddress.IPv4Address) -> None: ...

    def node_allocatable(self, name: str) -> str: ...

    def event(self, pod: Mapping[str, Any], kind: str, reason: str, message: str) -> None: ...

    async def isolate(self, pod: Mapping[str, Any], ip: str, netns: str) -> None: ...


# ---------------------------------------------------------------------------------------------
# The pod


class PodWorker:
    def __init__(self, ctx: Context, pod: dict[str, Any]) -> None:
        self.ctx = ctx
        self.pod = pod
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.name: str = meta["name"]
        self.namespace: str = meta["namespace"]
        self.node: str = pod["spec"]["nodeName"]
        self.dir = ctx.work_dir / "pods" / f"{self.namespace}_{self.name}_{self.uid}"
        spec = pod.get("spec") or {}
        self.restart_policy: str = spec.get("restartPolicy", "Always")
        self.has_init = bool(spec.get("initContainers"))
        self.init = [Container(self, c, True) for c in spec.get("initContainers") or []]
        self.main = [Container(self, c, False) for c in spec.get("containers") or []]
        self.ip: ipaddress.IPv4Address | None = None
        self.netns = ""
        self.sandbox_ready = False
        self.start_time = ""
        self.deleting = asyncio.Event()
        self.gone = False
        self._changed = asyncio.Event()
        self._retry = asyncio.Event()
        self._last_status: dict[str, Any] | None = None
        self._memory_mounts: list[Path] = []
        self.claim_dirs: dict[str, Path] = {}
        self._released = False
        self.cgroup: Path | None = (
            ctx.cgroup_root / f"pod{self.uid}" if ctx.cgroup_root is not None else None
        )
        if meta.get("deletionTimestamp"):
            self.deleting.set()

    # -- identity -----------------------------------------------------------------------------

    @property
    def hostname(self) -> str:
        spec = self.pod.get("spec") or {}
        return str(spec.get("hostname") or self.name)[:63]

    def fqdn(self) -> str | None:
        sub = (self.pod.get("spec") or {}).get("subdomain")
        return f"{self.hostname}.{sub}.{self.namespace}.svc.cluster.local" if sub else None

    def hosts_text(self) -> str:
        names = " ".join(n for n in (self.fqdn(), self.hostname) if n)
        return (
            "# Kubernetes-managed hosts file (node agent).\n"
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"{self.ip}\t{names}\n"
        )

    def resolv_text(self) -> str:
        ns = self.namespace
        return (
            f"search {ns}.svc.cluster.local svc.cluster.local cluster.local\n"
            f"nameserver {self.ctx.plan.gateway}\noptions ndots:5\n"
        )

    # -- events from the agent ---------------------------------------------------------------

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self.deleting.set()
        self._retry.set()

    def removed(self) -> None:
        """The pod object is gone (force-deleted): stop at once."""
        self.gone = True
        self.deleting.set()
        self._retry.set()

    def changed(self) -> None:
        self._changed.set()

    async def wait_retry(self, seconds: float) -> None:
        self._retry.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._retry.wait(), seconds)

    async def wait_deleting(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.deleting.wait(), seconds)

    async def objects(self) -> Objects:
        return await fetch_objects(self.ctx.api, self.pod)

    # -- volumes ------------------------------------------------------------------------------

    def _fs_group(self) -> int | None:
        value = ((self.pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
        return int(value) if value is not None else None

    def _volume_dir(self, name: str) -> Path:
        return self.dir / "volumes" / name

    async def prepare_volumes(self) -> None:
        """Create or refresh every volume; raises ConfigError while one cannot be made."""
        volumes = (self.pod.get("spec") or {}).get("volumes") or []
        objects = await self.objects()
        fs_group = self._fs_group()
        for vol in volumes:
            kind = volume_kind(vol)
            if kind in ("configMap", "secret", "projected", "downwardAPI"):
                token = await self._token_source(vol)
                files = plan_files(
                    vol,
                    FileSources(
                        configmaps=objects.cm_bytes,
                        secrets=objects.secret_bytes,
                        pod=self.pod,
                        pod_ip=str(self.ip),
                        host_ip=self.ctx.host_ip,
                        token=token,
                    ),
                )
                await asyncio.to_thread(
                    write_atomic, self._volume_dir(vol["name"]), files, fs_group
                )
            elif kind == "emptyDir":
                path = self._volume_dir(vol["name"])
                await asyncio.to_thread(make_dir_volume, path, fs_group)
                if (vol["emptyDir"] or {}).get(
                    "medium"
                ) == "Memory" and path not in self._memory_mounts:
                    limit = (vol["emptyDir"] or {}).get("sizeLimit")
                    size = f"size={int(parse_quantity(limit))}," if limit else ""
                    opts = f"{size}mode=1777"
                    if not await _run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)]):
                        raise ConfigError(f"emptyDir {vol['name']}: cannot mount a tmpfs")
                    self._memory_mounts.append(path)
            else:
                claim = claim_name(self.pod, vol)
                obj = await self.ctx.api.get(
                    f"/api/v1/namespaces/{self.namespace}/persistentvolumeclaims/{claim}"
                )
                if obj is None:
                    raise ConfigError(f'persistentvolumeclaim "{claim}" not found')
                if obj["metadata"].get("deletionTimestamp"):
                    raise ConfigError(f'persistentvolumeclaim "{claim}" is being deleted')
                path = self.ctx.claims_dir / obj["metadata"]["uid"]
                await asyncio.to_thread(_claim_dir, path, fs_group, obj)
                self.claim_dirs[vol["name"]] = path

    async def _token_source(self, vol: Mapping[str, Any]) -> Callable[[str, int], str]:
        tokens: dict[tuple[str, int], str] = {}
        for src in (vol.get("projected") or {}).get("sources") or []:
            tok = src.get("serviceAccountToken")
            if tok is None:
                continue
            key = (tok.get("audience", ""), int(tok.get("expirationSeconds", 3600)))
            sa = (self.pod.get("spec") or {}).get("serviceAccountName", "default")
            body: dict[str, Any] = {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {
                    "expirationSeconds": key[1],
                    "boundObjectRef": {
                        "kind": "Pod",
                        "apiVersion": "v1",
                        "name": self.name,
                        "uid": self.uid,
                    },
                },
            }
            if key[0]:
                body["spec"]["audiences"] = [key[0]]
            try:
                out = await self.ctx.api.create(
                    f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{sa}/token", body
                )
            except ApiError as exc:
                raise ConfigError(f"service account token for {sa}: {exc}") from exc
            tokens[key] = str((out.get("status") or {}).get("token", ""))
        return lambda aud, exp: tokens.get((aud, exp), "")

    def mounts_for(
        self, container: Mapping[str, Any], env: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """Host source, mount path and mode of each volumeMount (``subPathExpr`` expanded
        over the container's environment)."""
        volumes = {v["name"]: v for v in (self.pod.get("spec") or {}).get("volumes") or []}
        mounts = []
        for m in container.get("volumeMounts") or []:
            vol = volumes.get(m.get("name", ""))
            if vol is None:
                raise ConfigError(f"volumeMount {m.get('name')!r} names no volume of the pod")
            kind = volume_kind(vol)
            base = (
                self.claim_dirs.get(vol["name"])
                if kind in ("persistentVolumeClaim", "ephemeral")
                else None
            )
            source = base or self._volume_dir(vol["name"])
            sub = m.get("subPath") or ""
            if m.get("subPathExpr"):
                sub = expand(m["subPathExpr"], env.get)
            if sub:
                if sub.startswith("/") or ".." in sub.split("/"):
                    raise ConfigError(f"volumeMount {m['name']}: invalid subPath {sub!r}")
                source = source / sub
                if kind in ("configMap", "secret", "projected", "downwardAPI"):
                    source = source.resolve()
                elif not source.exists():
                    source.mkdir(parents=True, exist_ok=True)
            ro = bool(m.get("readOnly")) or kind in (
                "configMap",
                "secret",
                "projected",
                "downwardAPI",
            )
            mounts.append(
                {
                    "source": str(source),
                    "target": m["mountPath"],
                    "readonly": ro,
                    "file": source.is_file(),
                }
            )
        return mounts

    # -- lifecycle ----------------------------------------------------------------------------

    def view(self) -> PodView:
        spec = self.pod.get("spec") or {}
        return PodView(
            sandbox_ready=self.sandbox_ready,
            init=[c.view() for c in self.init],
            main=[c.view() for c in self.main],
            restart_policy=self.restart_policy,
            pod_ip=str(self.ip) if self.ip else "",
            host_ip=self.ctx.host_ip,
            start_time=self.start_time,
            readiness_gates=[g["conditionType"] for g in spec.get("readinessGates") or []],
        )

    async def status_loop(self) -> None:
        while True:
            await self._changed.wait()
            await asyncio.sleep(0.05)
            self._changed.clear()
            if self.gone:
                return
            status = pod_status(self.view(), self.pod.get("status") or {})
            if status == self._last_status:
                continue
            try:
                out = await self.ctx.api.patch(
                    pod_path(self.pod) + "/status", {"status": status}, STRATEGIC
                )
                self.pod["status"] = out.get("status", status)
                self._last_status = status
            except ApiError as exc:
                if exc.status == 404:
                    return
                log.warning("%s: status update failed: %s", pod_ref(self.pod), exc)
                await asyncio.sleep(1)
                self._changed.set()

    async def run(self) -> None:
        """The pod's whole life on this node, until its object is deleted."""
        status = asyncio.get_running_loop().create_task(self.status_loop())
        try:
            try:
                await self._lifecycle()
            except Exception:
                log.exception("%s: pod worker failed", pod_ref(self.pod))
            # Done (a finished Job pod, a failed init container) or going away: the sandbox
            # goes now; a finished pod keeps its logs until its object is deleted.
            await self._teardown(remove_dir=False)
            self.changed()
            await self.deleting.wait()
            await self._teardown(remove_dir=True)
            if not self.gone:
                await self._finalize()
        finally:
            self.gone = True
            status.cancel()

    async def _lifecycle(self) -> None:
        if self.deleting.is_set():
            return
        self.start_time = now()
        if (self.pod.get("spec") or {}).get("hostNetwork"):
            message = "hostNetwork pods are not supported by the node agent (each pod has its own)"
            for c in [*self.init, *self.main]:
                c.state = Waiting("CreateContainerConfigError", message)
            self.ctx.event(self.pod, "Warning", "Failed", message)
            self.changed()
            await self.deleting.wait()
            return
        self.ip = self.ctx.allocate_ip(self.node)
        self.netns = await asyncio.to_thread(network.create_pod_netns, self.ctx.plan, self.ip)
        await self.ctx.isolate(self.pod, str(self.ip), self.netns)
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.cgroup is not None:
            self.cgroup.mkdir(parents=True, exist_ok=True)
        self.sandbox_ready = True
        self.changed()
        while not self.deleting.is_set():
            try:
                await self.prepare_volumes()
                break
            except ConfigError as exc:
                message = f"MountVolume.SetUp failed: {exc}"
                for c in [*self.init, *self.main]:
                    if isinstance(c.state, Waiting) and c.state.message != message:
                        c.state = Waiting(c.state.reason, message)
                self.ctx.event(self.pod, "Warning", "FailedMount", message)
                self.changed()
                await self.wait_retry(2.0)
        for c in self.init:
            if self.deleting.is_set():
                return
            await c.supervise()
            if not (isinstance(c.state, Terminated) and c.state.exit_code == 0):
                return  # Never: the pod failed; deleting: going away
        for c in self.main:
            if isinstance(c.state, Waiting) and c.state.reason == "PodInitializing":
                c.state = Waiting("ContainerCreating")
        tasks = [asyncio.get_running_loop().create_task(c.supervise()) for c in self.main]
        deleting = asyncio.get_running_loop().create_task(self.deleting.wait())
        refresh = asyncio.get_running_loop().create_task(self._refresh_file_volumes())
        try:
            everything: asyncio.Future[Any] = asyncio.gather(*tasks)
            await asyncio.wait([everything, deleting], return_when=asyncio.FIRST_COMPLETED)
            if self.deleting.is_set():
                await self._stop_all()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            deleting.cancel()
            refresh.cancel()

    async def _refresh_file_volumes(self) -> None:
        """ConfigMap, Secret and downwardAPI volumes follow their objects (as the kubelet's
        periodic sync does); on an error the files stay as they were."""
        volumes = [
            v
            for v in (self.pod.get("spec") or {}).get("volumes") or []
            if any(k in v for k in ("configMap", "secret", "downwardAPI"))
            or (
                "projected" in v
                and not any(
                    "serviceAccountToken" in src
                    for src in (v["projected"] or {}).get("sources") or []
                )
            )
        ]
        while volumes and not self.deleting.is_set():
            await self.wait_deleting(VOLUME_REFRESH_S)
            if self.deleting.is_set():
                return
            try:
                objects = await self.objects()
                for vol in volumes:
                    files = plan_files(
                        vol,
                        FileSources(
                            configmaps=objects.cm_bytes,
                            secrets=objects.secret_bytes,
                            pod=self.pod,
                            pod_ip=str(self.ip),
                            host_ip=self.ctx.host_ip,
                        ),
                    )
                    await asyncio.to_thread(
                        write_atomic, self._volume_dir(vol["name"]), files, self._fs_group()
                    )
            except (ConfigError, ApiError, OSError) as exc:
                log.info("%s: volume refresh skipped: %s", pod_ref(self.pod), exc)

    def grace_deadline(self) -> float:
        meta = self.pod.get("metadata") or {}
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        if self.gone:
            grace = 0
        return time.monotonic() + float(grace)

    async def _stop_all(self) -> None:
        deadline = self.grace_deadline()
        containers = [*self.init, *self.main]
        await asyncio.gather(*(c.kill(deadline) for c in containers))

    async def stop_now(self) -> None:
        """The agent is shutting down: every container gets a short grace period."""
        self.deleting.set()
        self.gone = True
        deadline = time.monotonic() + 3
        await asyncio.gather(*(c.kill(deadline, hooks=False) for c in [*self.init, *self.main]))

    async def _teardown(self, remove_dir: bool) -> None:
        """Sandbox gone: address, namespace, memory volumes (and the pod's directory)."""
        for c in [*self.init, *self.main]:
            if c.proc is not None and c.proc.returncode is None:
                await c.kill(time.monotonic())
        for path in self._memory_mounts:
            await _run(["umount", "-l", str(path)])
        self._memory_mounts = []
        if self.ip is not None and not self._released:
            await asyncio.to_thread(network.delete_pod_netns, self.ctx.plan, self.ip)
            self.ctx.release_ip(self.ip)
            self._released = True
        self.sandbox_ready = False
        if self.cgroup is not None:
            await asyncio.to_thread(remove_cgroup_tree, self.cgroup)
            await self._reap_orphans()
        if remove_dir:
            await asyncio.to_thread(shutil.rmtree, self.dir, True)

    async def _reap_orphans(self) -> None:
        """Reap the pod's processes the agent adopted, so none outlives the pod object."""
        assert self.cgroup is not None
        mark = "/" + "/".join(self.cgroup.parts[-3:])  # /ragops/<cluster>/pod<uid>
        keep = {c.proc.pid for c in [*self.init, *self.main] if c.proc is not None}
        left = await asyncio.to_thread(reaper.reap_until_clear, mark, keep)
        if left:
            log.warning("%s: processes %s not reaped", pod_ref(self.pod), left)

    async def _finalize(self) -> None:
        """The kubelet's last word: delete the pod object with grace 0 (this uid only)."""
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}}
        try:
            await self.ctx.api.delete(pod_path(self.pod), body)
        except ApiError as exc:
            if exc.status != 409:
                log.warning("%s: final delete failed: %s", pod_ref(self.pod), exc)


def _claim_dir(path: Path, fs_group: int | None, claim: Mapping[str, Any]) -> None:
    new = not path.exists()
    make_dir_volume(path, fs_group, 0o775 if fs_group is not None else 0o777)
    if not new:
        apply_fs_group(path, fs_group)
    meta = claim.get("metadata") or {}
    (path.parent / f"{meta.get('uid')}.json").write_text(
        json.dumps(
            {
                "namespace": meta.get("namespace"),
                "name": meta.get("name"),
                "uid": meta.get("uid"),
                "created": dt.datetime.now(dt.UTC).isoformat(),
            }
        )
    )


def remove_cgroup_tree(path: Path) -> None:
    if not path.exists():
        return
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            (child / "cgroup.kill").write_text("1")
        _rmdir_when_empty(child)
    with contextlib.suppress(OSError):
        (path / "cgroup.kill").write_text("1")
    _rmdir_when_empty(path)


def _rmdir_when_empty(path: Path) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                log.warning("cgroup %s is still busy", path)
                return
            time.sleep(0.02)


async def _run(argv: list[str]) -> bool:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        log.warning("%s failed: %s", " ".join(argv), err.decode(errors="replace").strip())
    return proc.returncode == 0
