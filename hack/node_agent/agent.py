"""The node agent: a kubelet for the local cluster's real-pod nodes.

It registers its nodes (labelled ``ragops.io/pods=real``, each with a pod CIDR from the
cluster's address plan) and keeps their Leases fresh, runs a :class:`PodWorker` for every pod
bound to them, and serves what pods need around them: cluster DNS, ClusterIP Services, and
(when the cluster has a Prometheus) scrape targets from ServiceMonitors. On SIGTERM it stops
every container, removes every namespace, address, cgroup and mount it made, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import os
import platform
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from hack.node_agent import network, promsd, reaper
from hack.node_agent.config import NODE_LABEL, REAL, AgentConfig
from hack.node_agent.dns import DnsServer
from hack.node_agent.images import ImageTable, builtin_table, load_extras
from hack.node_agent.kubeapi import Api, ApiError, Credentials, Reflector
from hack.node_agent.netplan import NetPlan
from hack.node_agent.podenv import ServiceLink
from hack.node_agent.podobjects import pod_ref
from hack.node_agent.pods import PodWorker
from hack.node_agent.podstatus import now
from hack.node_agent.policysync import PolicyEnforcer, PolicyError, Sandbox
from hack.node_agent.svcproxy import ServiceProxy

log = logging.getLogger("node-agent")

LEASE_SECONDS = 40
RENEW_S = 10.0
NODE_STATUS_S = 30.0
CLAIM_GC_S = 10.0
READY_FILE = "agent.ready"
AGENT_VERSION = "ragops-node-agent/0.1"


def cgroup2_mount() -> Path | None:
    """Where a cgroup v2 hierarchy is mounted (for killing whole containers), if anywhere."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        if right.split(" ")[0] == "cgroup2":
            return Path(left.split(" ")[4])
    return None


def micro_time() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def mem_total() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{line.split()[1]}Ki"
    return "8Gi"


class IpAllocator:
    """Addresses of one node's CIDR, handed out in turn (a freed one is reused last)."""

    def __init__(self, plan: NetPlan, cidr: str) -> None:
        self.pool = list(plan.pod_addresses(ipaddress.IPv4Network(cidr)))
        self.used: set[ipaddress.IPv4Address] = set()
        self.next = 0

    def allocate(self) -> ipaddress.IPv4Address:
        for step in range(len(self.pool)):
            ip = self.pool[(self.next + step) % len(self.pool)]
            if ip not in self.used:
                self.used.add(ip)
                self.next = (self.next + step + 1) % len(self.pool)
                return ip
        raise RuntimeError("no free pod address on this node")

    def release(self, ip: ipaddress.IPv4Address) -> None:
        self.used.discard(ip)


class Agent:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.plan = cfg.plan
        self.api = Api(Credentials(cfg.server, cfg.ca, cfg.cert, cfg.key))
        self.work_dir = cfg.work_dir
        self.claims_dir = cfg.claims_dir
        self.hide = cfg.hide
        self.backoff_initial_s = cfg.backoff_initial_s
        self.backoff_max_s = cfg.backoff_max_s
        self.host_ip = str(cfg.plan.gateway)
        cg = cgroup2_mount()
        self.cgroup_root: Path | None = cg / "ragops" / self.plan.prefix if cg else None
        self.workers: dict[str, PodWorker] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.allocators = {n.name: IpAllocator(self.plan, n.cidr) for n in cfg.nodes}
        self.services = Reflector(self.api, "/api/v1/services", self._net_event, name="services")
        self.slices = Reflector(
            self.api,
            "/apis/discovery.k8s.io/v1/endpointslices",
            self._net_event,
            name="endpointslices",
        )
        self.monitors = Reflector(
            self.api,
            "/apis/monitoring.coreos.com/v1/servicemonitors",
            self._prom_event,
            name="servicemonitors",
        )
        self.rules = Reflector(
            self.api,
            "/apis/monitoring.coreos.com/v1/prometheusrules",
            self._prom_event,
            name="prometheusrules",
        )
        self.namespaces = Reflector(
            self.api, "/api/v1/namespaces", self._policy_event, name="namespaces"
        )
        self.netpols = Reflector(
            self.api,
            "/apis/networking.k8s.io/v1/networkpolicies",
            self._policy_event,
            name="networkpolicies",
        )
        self.policies = PolicyEnforcer(self.plan)
        self.pod_reflectors = [
            Reflector(
                self.api,
                "/api/v1/pods",
                self._pod_event,
                params={"fieldSelector": f"spec.nodeName={n.name}"},
                name=f"pods/{n.name}",
            )
            for n in cfg.nodes
        ]
        self.dns = DnsServer(self.host_ip)
        self.proxy = ServiceProxy(self.plan, cfg.apiserver_port, self.policies.allows)
        self._policy_dirty = asyncio.Event()
        self._net_dirty = asyncio.Event()
        self._prom_dirty = asyncio.Event()
        self._images: tuple[float, ImageTable] | None = None
        self._builtin: ImageTable | None = None
        self._recent_events: dict[tuple[str, str, str], float] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._reloaded = ""

    # -- Context for pod workers ----------------------------------------------------------------

    def image_table(self) -> ImageTable:
        if self._builtin is None:
            self._builtin = builtin_table()
        path = self.cfg.images_file
        mtime = path.stat().st_mtime if path.exists() else 0.0
        if self._images is None or self._images[0] != mtime:
            try:
                table = self._builtin.with_extras(load_extras(path))
            except (ValueError, OSError) as exc:
                log.error("ignoring %s: %s", path, exc)
                table = self._builtin
            self._images = (mtime, table)
        return self._images[1]

    def service_links(self, namespace: str) -> tuple[ServiceLink, ...]:
        links = []
        for svc in self.services.items.values():
            meta, spec = svc["metadata"], svc.get("spec") or {}
            if meta["namespace"] == namespace or (meta["namespace"], meta["name"]) == (
                "default",
                "kubernetes",
            ):
                ports = tuple(
                    (p.get("name", ""), int(p["port"]), p.get("protocol", "TCP"))
                    for p in spec.get("ports") or []
                )
                links.append(ServiceLink(meta["name"], str(spec.get("clusterIP", "")), ports))
        return tuple(links)

    def allocate_ip(self, node: str) -> ipaddress.IPv4Address:
        return self.allocators[node].allocate()

    def release_ip(self, ip: ipaddress.IPv4Address) -> None:
        for alloc in self.allocators.values():
            alloc.release(ip)

    def node_allocatable(self, name: str) -> str:
        return self.capacity().get(name, "0")

    def capacity(self) -> dict[str, str]:
        base = {
            "cpu": str(os.cpu_count() or 1),
            "memory": mem_total(),
            "pods": "110",
            "ephemeral-storage": "100Gi",
        }
        base.update(self.cfg.capacity)
        return base

    def event(self, pod: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        meta = pod["metadata"]
        key = (meta["uid"], reason, message)
        loop = asyncio.get_running_loop()
        if loop.time() - self._recent_events.get(key, -1e9) < 30:
            return
        self._recent_events[key] = loop.time()
        stamp = now()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "kind": "Pod",
                "apiVersion": "v1",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "kubelet", "host": pod["spec"].get("nodeName", "")},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": "kubelet",
            "reportingInstance": pod["spec"].get("nodeName", ""),
        }
        self._spawn(self._post_event(meta["namespace"], body))

    async def _post_event(self, namespace: str, body: dict[str, Any]) -> None:
        with contextlib.suppress(ApiError, aiohttp.ClientError, asyncio.TimeoutError):
            await self.api.create(f"/api/v1/namespaces/{namespace}/events", body)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- pods ------------------------------------------------------------------------------------

    async def _pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        self._policy_dirty.set()
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if kind == "DELETED":
            if worker is not None:
                worker.removed()
            return
        if worker is not None:
            worker.update(pod)
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") or pod["metadata"].get("deletionTimestamp"):
            # Not ours to run (finished before this agent started): let it go if asked.
            if pod["metadata"].get("deletionTimestamp"):
                body = {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
                with contextlib.suppress(ApiError):
                    await self.api.delete(
                        f"/api/v1/namespaces/{pod['metadata']['namespace']}"
                        f"/pods/{pod['metadata']['name']}",
                        body,
                    )
            return
        worker = PodWorker(self, pod)
        self.workers[uid] = worker
        task = asyncio.get_running_loop().create_task(worker.run(), name=f"pod {pod_ref(pod)}")
        self.tasks[uid] = task

        def done(_: asyncio.Task[None], uid: str = uid) -> None:
            self.workers.pop(uid, None)
            self.tasks.pop(uid, None)

        task.add_done_callback(done)

    # -- nodes -----------------------------------------------------------------------------------

    def _node_status(self) -> dict[str, Any]:
        stamp = now()
        conds = [
            (
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            (
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            ("Ready", "True", "KubeletReady", "node agent is posting ready status"),
        ]
        cap = self.capacity()
        uname = platform.uname()
        return {
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "reason": r,
                    "message": m,
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
                for t, s, r, m in conds
            ],
            "addresses": [{"type": "InternalIP", "address": self.host_ip}],
            "capacity": cap,
            "allocatable": cap,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": uname.release,
                "osImage": "ragops node agent (processes)",
                "containerRuntimeVersion": AGENT_VERSION,
                "kubeletVersion": AGENT_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }

    async def register_nodes(self) -> None:
        for node in self.cfg.nodes:
            body = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": node.name,
                    "labels": {
                        "kubernetes.io/hostname": node.name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        NODE_LABEL: REAL,
                        "type": "ragops-agent",
                    },
                    "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
                },
                "spec": {"podCIDR": node.cidr, "podCIDRs": [node.cidr]},
            }
            path = f"/api/v1/nodes/{node.name}"
            if await self.api.get(path) is None:
                await self.api.create("/api/v1/nodes", body)
            await self.api.patch(path + "/status", {"status": self._node_status()})

    async def _leases(self) -> None:
        while True:
            for node in self.cfg.nodes:
                path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node.name}"
                spec = {
                    "holderIdentity": node.name,
                    "leaseDurationSeconds": LEASE_SECONDS,
                    "renewTime": micro_time(),
                }
                try:
                    if await self.api.get(path) is None:
                        await self.api.create(
                            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                            {
                                "apiVersion": "coordination.k8s.io/v1",
                                "kind": "Lease",
                                "metadata": {"name": node.name, "namespace": "kube-node-lease"},
                                "spec": spec,
                            },
                        )
                    else:
                        await self.api.patch(path, {"spec": spec})
                except (TimeoutError, ApiError, aiohttp.ClientError) as exc:
                    log.warning("lease of %s: %s", node.name, exc)
            await asyncio.sleep(RENEW_S)

    async def _node_heartbeat(self) -> None:
        while True:
            await asyncio.sleep(NODE_STATUS_S)
            for node in self.cfg.nodes:
                with contextlib.suppress(ApiError, aiohttp.ClientError, asyncio.TimeoutError):
                    await self.api.patch(
                        f"/api/v1/nodes/{node.name}/status", {"status": self._node_status()}
                    )

    # -- Services: DNS and proxy ------------------------------------------------------------------

    def _net_event(self, _kind: str, _obj: dict[str, Any]) -> None:
        self._net_dirty.set()
        self._prom_dirty.set()

    def _prom_event(self, _kind: str, _obj: dict[str, Any]) -> None:
        self._prom_dirty.set()

    async def _net_sync(self) -> None:
        await self.services.synced.wait()
        await self.slices.synced.wait()
        while True:
            await self._net_dirty.wait()
            await asyncio.sleep(0.05)
            self._net_dirty.clear()
            services = list(self.services.items.values())
            slices = list(self.slices.items.values())
            self.dns.update(services, slices)
            try:
                await self.proxy.sync(services, slices)
            except Exception:
                log.exception("Service proxy sync failed")

    # -- NetworkPolicies --------------------------------------------------------------------------

    def _policy_event(self, _kind: str, _obj: dict[str, Any]) -> None:
        self._policy_dirty.set()

    def _sandboxes(self) -> list[Sandbox]:
        return [
            Sandbox(w.uid, w.pod, str(w.ip), w.netns)
            for w in list(self.workers.values())
            if w.ip is not None and w.netns
        ]

    async def isolate(self, pod: Mapping[str, Any], ip: str, netns: str) -> None:
        """Load a new sandbox's table before its containers start (no open moment)."""
        box = Sandbox(pod["metadata"]["uid"], pod, ip, netns)
        others = [b for b in self._sandboxes() if b.uid != box.uid]
        changes = self.policies.refresh(
            [*others, box], self.namespaces.items.values(), self.netpols.items.values()
        )
        if not await self.policies.apply([c for c in changes if c[0].uid == box.uid]):
            raise PolicyError(f"NetworkPolicy rules for {netns} could not be loaded")
        self._policy_dirty.set()

    async def _policy_sync(self) -> None:
        await self.namespaces.synced.wait()
        await self.netpols.synced.wait()
        while True:
            await self._policy_dirty.wait()
            await asyncio.sleep(0.05)
            self._policy_dirty.clear()
            changes = self.policies.refresh(
                self._sandboxes(), self.namespaces.items.values(), self.netpols.items.values()
            )
            if not await self.policies.apply(changes):
                self._policy_dirty.set()
                await asyncio.sleep(0.5)

    async def _prom_sync(self) -> None:
        prom_dir = self.cfg.prometheus_dir
        if prom_dir is None:
            return
        (prom_dir / "rules").mkdir(parents=True, exist_ok=True)
        while True:
            await self._prom_dirty.wait()
            await asyncio.sleep(0.2)
            self._prom_dirty.clear()
            try:
                if not await self._prom_sync_once(prom_dir):
                    self._prom_dirty.set()
                    await asyncio.sleep(1)
            except Exception:
                log.exception("Prometheus configuration update failed")
                self._prom_dirty.set()
                await asyncio.sleep(1)

    async def _prom_sync_once(self, prom_dir: Path) -> bool:
        """Targets, rule files and prometheus.yml from the current objects; reload on change.
        False when Prometheus could not be told (retried)."""
        sd_dir, rules_dir = prom_dir / "sd", prom_dir / "rules"
        jobs, files = promsd.translate(
            self.monitors.items.values(),
            self.services.items.values(),
            self.slices.items.values(),
            self.plan.in_pod_network,
            sd_dir,
        )
        await asyncio.to_thread(promsd.write_targets, sd_dir, files)
        rule_texts = promsd.rule_files(self.rules.items.values())
        changed = False
        for name, text in rule_texts.items():
            changed |= promsd.write_if_changed(rules_dir / name, text)
        for stale in rules_dir.glob("*.yaml"):
            if stale.name not in rule_texts:
                stale.unlink()
                changed = True
        config = promsd.prometheus_config(
            jobs, self.cfg.scrape_static, self.cfg.scrape_interval, rules_dir, prom_dir / "host"
        )
        changed |= promsd.write_if_changed(prom_dir / "prometheus.yml", config)
        if changed or self._reloaded != config:
            if not await self._reload_prometheus():
                return False
            self._reloaded = config
        return True

    async def _reload_prometheus(self) -> bool:
        if not self.cfg.prometheus_url:
            return True
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"{self.cfg.prometheus_url}/-/reload", timeout=aiohttp.ClientTimeout(total=10)
                ) as resp,
            ):
                if resp.status != 200:
                    log.error("Prometheus refused the new configuration: %s", await resp.text())
                return True
        except (TimeoutError, aiohttp.ClientError):
            return False

    # -- claims ----------------------------------------------------------------------------------

    async def _claims_gc(self) -> None:
        while True:
            await asyncio.sleep(CLAIM_GC_S)
            try:
                await self._claims_gc_once()
            except (TimeoutError, ApiError, aiohttp.ClientError) as exc:
                log.warning("claim clean-up skipped: %s", exc)
            except Exception:
                log.exception("claim clean-up failed")

    async def _claims_gc_once(self) -> None:
        """Remove the directories of claims that no longer exist and no pod mounts."""
        listed = await self.api.request("GET", "/api/v1/persistentvolumeclaims")
        live = {c["metadata"]["uid"] for c in listed.get("items") or []}
        in_use = {p.name for w in self.workers.values() for p in w.claim_dirs.values()}
        for entry in list(self.claims_dir.glob("*")):
            uid = entry.name.removesuffix(".json")
            if uid not in live and uid not in in_use:
                log.info("claim %s is gone: removing %s", uid, entry)
                if entry.is_dir():
                    await asyncio.to_thread(shutil.rmtree, entry, True)
                else:
                    entry.unlink(missing_ok=True)

    async def _reap_orphans(self) -> None:
        """Reap zombies the agent adopted from running pods (a restarted container's
        descendants, a daemon's children whose parent exited)."""
        if self.cgroup_root is None:
            return
        mark = "/" + "/".join(self.cgroup_root.parts[-2:]) + "/"  # /ragops/<cluster>/
        while True:
            await asyncio.sleep(1.0)
            keep = {
                c.proc.pid
                for w in self.workers.values()
                for c in [*w.init, *w.main]
                if c.proc is not None
            }
            zombies = await asyncio.to_thread(reaper.adopted_zombies, mark, keep)
            if zombies:
                reaper.reap(zombies)

    # -- run -------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        (self.work_dir / "pods").mkdir(parents=True, exist_ok=True)
        self.claims_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(network.setup_bridge, self.plan)
        if self.cgroup_root is not None:
            self.cgroup_root.mkdir(parents=True, exist_ok=True)
        await self.dns.start()
        await self.register_nodes()
        loop = asyncio.get_running_loop()
        tasks = [
            loop.create_task(t)
            for t in (
                self.services.run(),
                self.slices.run(),
                self.monitors.run(),
                self.rules.run(),
                self.namespaces.run(),
                self.netpols.run(),
                *(r.run() for r in self.pod_reflectors),
                self._leases(),
                self._node_heartbeat(),
                self._net_sync(),
                self._prom_sync(),
                self._policy_sync(),
                self._claims_gc(),
                self._reap_orphans(),
            )
        ]
        self._prom_dirty.set()
        await asyncio.gather(*(r.synced.wait() for r in self.pod_reflectors))
        (self.work_dir / READY_FILE).write_text(json.dumps({"pid": os.getpid()}) + "\n")
        log.info(
            "node agent ready: nodes %s, pod network %s",
            [n.name for n in self.cfg.nodes],
            self.plan.pod_network,
        )
        try:
            await stop.wait()
        finally:
            log.info("node agent stopping %d pods", len(self.workers))
            for task in tasks:
                task.cancel()
            await asyncio.gather(
                *(w.stop_now() for w in list(self.workers.values())), return_exceptions=True
            )
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            await self.proxy.close()
            self.dns.close()
            await self.api.close()
            await asyncio.to_thread(cleanup_host, self.plan, self.cgroup_root, self.work_dir)


def cleanup_host(plan: NetPlan, cgroup_root: Path | None, work_dir: Path) -> list[str]:
    """Remove what this cluster left on the host; returns what was still there."""
    from hack.node_agent.pods import remove_cgroup_tree

    left: list[str] = []
    if cgroup_root is not None and cgroup_root.exists():
        left.append(f"cgroup {cgroup_root}")
        remove_cgroup_tree(cgroup_root)
    if cgroup_root is not None:
        with contextlib.suppress(OSError):
            cgroup_root.parent.rmdir()  # the shared parent, once no cluster uses it
    for mount in mounts_under(work_dir):
        left.append(f"mount {mount}")
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    left += network.own_netns(plan) + network.own_links(plan)
    network.teardown(plan)
    return left


def mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    out = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            target = line.split(" ")[4]
            if target == prefix or target.startswith(prefix + "/"):
                out.append(target)
    return sorted(out, reverse=True)
