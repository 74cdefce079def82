"""Address plan of one local cluster, and the host-wide lease that keeps plans apart.

Every address a local cluster uses comes from 198.18.0.0/15 (reserved for benchmarking: neither
private nor public, never routed). The range is cut into 32 slots of /20; a cluster leases one
slot for its lifetime, so several clusters on one host never share an address, a name or a
route. Inside a slot (four /22 blocks):

- block 0: the Service range (ClusterIPs) given to kube-apiserver;
- blocks 1 and 2: the pod CIDRs of the two kwok (fake) nodes; nothing answers there, and an
  ``unreachable`` route for the whole slot makes traffic to them fail at once instead of
  leaving the host;
- block 3: the real-pod network, a bridge on the host whose first address is the pods'
  gateway (and their DNS server); each real node owns one /23 of it.

Names of host objects (bridge, veths, network namespaces, cgroups) start with ``rp`` and the
cluster's id, so ``down`` removes exactly its own. The lease is an ``flock`` on
``/run/ragops/netslots/slot-NN.lock``, held by the node agent for as long as it runs; a slot
whose lock is free but which still has host addresses or routes in it is skipped, never
reused.

A cluster that must hold more (``span`` 2, 4 or 8: ``cluster up --span 8`` for two thousand
systems) leases that many aligned, consecutive slots as one: its plan is the same layout
scaled up (span 8: a /17 of four /19 blocks, the fake nodes 16,380 pod addresses, the Service
range 8,190), and it holds the lock of every slot it spans. Its id is that of its first slot.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

POOL = ipaddress.IPv4Network("198.18.0.0/15")
SLOT_PREFIX = 20
BLOCK_PREFIX = 22
NODE_PREFIX = 23
MAX_SPAN = 8
LOCK_DIR = Path(os.environ.get("RAGOPS_NETSLOT_DIR", "/run/ragops/netslots"))
NAME_PREFIX = "rp"
IFNAMSIZ = 15


class NetPlanError(RuntimeError):
    """No free slot, or an address outside the plan."""


@dataclass(frozen=True)
class NetPlan:
    """The addresses and host names of one cluster (pure data; see the module docstring)."""

    slot: int
    cluster_id: str
    span: int = 1

    def __post_init__(self) -> None:
        if self.span not in spans():
            raise NetPlanError(f"span {self.span} must be one of {', '.join(map(str, spans()))}")
        if self.slot % self.span or not 0 <= self.slot < slot_count():
            raise NetPlanError(
                f"slot {self.slot} cannot start a span of {self.span}: it must be a multiple of "
                f"the span below {slot_count()}"
            )

    @property
    def _shift(self) -> int:
        return self.span.bit_length() - 1

    @property
    def network(self) -> ipaddress.IPv4Network:
        return slot_network(self.slot, self.span)

    def _block(self, index: int) -> ipaddress.IPv4Network:
        prefix = BLOCK_PREFIX - self._shift
        return _subnet(self.network, prefix, index)

    @property
    def service_cidr(self) -> ipaddress.IPv4Network:
        return self._block(0)

    @property
    def kubernetes_service_ip(self) -> ipaddress.IPv4Address:
        """The first Service address: kube-apiserver gives it to Service ``default/kubernetes``."""
        return self.service_cidr.network_address + 1

    @property
    def fake_node_cidrs(self) -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]:
        return (self._block(1), self._block(2))

    @property
    def pod_network(self) -> ipaddress.IPv4Network:
        """The bridge's subnet: every real pod's address is in it."""
        return self._block(3)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.pod_network.network_address + 1

    @property
    def real_node_cidrs(self) -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]:
        first, second = self.pod_network.subnets(new_prefix=NODE_PREFIX - self._shift)
        return (first, second)

    @property
    def prefix(self) -> str:
        """Start of every host object name of this cluster."""
        return f"{NAME_PREFIX}{self.cluster_id}"

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br"

    def netns(self, index: int) -> str:
        return f"{self.prefix}-{index}"

    def veth(self, index: int) -> str:
        name = f"{self.prefix}v{index}"
        if len(name) > IFNAMSIZ:
            raise NetPlanError(f"interface name {name} is longer than {IFNAMSIZ} characters")
        return name

    def pod_index(self, ip: ipaddress.IPv4Address) -> int:
        """A pod's number inside the pod network (names its netns and veth)."""
        if ip not in self.pod_network:
            raise NetPlanError(f"{ip} is not in this cluster's pod network {self.pod_network}")
        return int(ip) - int(self.pod_network.network_address)

    def pod_addresses(self, node_cidr: ipaddress.IPv4Network) -> Iterator[ipaddress.IPv4Address]:
        """Addresses a node may give its pods: its /23 less the network, gateway, broadcast."""
        reserved = {
            self.pod_network.network_address,
            self.gateway,
            self.pod_network.broadcast_address,
        }
        for ip in node_cidr:
            if ip not in reserved:
                yield ip

    def in_pod_network(self, address: str) -> bool:
        try:
            return ipaddress.ip_address(address) in self.pod_network
        except ValueError:
            return False

    def is_own(self, address: str) -> bool:
        """True for loopback, the pod network and the Service range of this cluster only."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip.is_loopback:
            return True
        return isinstance(ip, ipaddress.IPv4Address) and (
            ip in self.pod_network or ip in self.service_cidr
        )

    def assert_own(self, address: str, what: str) -> None:
        """Refuse to send traffic anywhere but loopback or this cluster's own addresses."""
        if not self.is_own(address):
            raise NetPlanError(
                f"refusing to send {what} to {address}: only loopback, {self.pod_network} and "
                f"{self.service_cidr} belong to this cluster"
            )

    def to_json(self) -> dict[str, object]:
        return {"slot": self.slot, "cluster_id": self.cluster_id, "span": self.span}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> NetPlan:
        slot, cid, span = data["slot"], data["cluster_id"], data.get("span", 1)
        if not isinstance(slot, int) or not isinstance(cid, str) or not isinstance(span, int):
            raise NetPlanError(f"bad network plan record {data!r}")
        return cls(slot=slot, cluster_id=cid, span=span)


def slot_count() -> int:
    return int(2 ** (SLOT_PREFIX - POOL.prefixlen))


def spans() -> tuple[int, ...]:
    """Sizes a plan may have, in slots: powers of two up to `MAX_SPAN`."""
    return tuple(2**i for i in range(MAX_SPAN.bit_length()))


def _subnet(network: ipaddress.IPv4Network, prefix: int, index: int) -> ipaddress.IPv4Network:
    """The ``index``-th /``prefix`` of ``network`` (without listing them all)."""
    size = 2 ** (32 - prefix)
    if not 0 <= index < network.num_addresses // size:
        raise NetPlanError(f"{network} has no /{prefix} number {index}")
    return ipaddress.IPv4Network((int(network.network_address) + index * size, prefix))


def slot_network(slot: int, span: int = 1) -> ipaddress.IPv4Network:
    """The addresses of ``span`` slots from ``slot`` on (``slot`` a multiple of ``span``)."""
    return _subnet(POOL, SLOT_PREFIX - (span.bit_length() - 1), slot // span)


def host_networks_in_use() -> list[ipaddress.IPv4Network]:
    """Every IPv4 route and address prefix on the host (to tell used slots from free ones)."""
    used: list[ipaddress.IPv4Network] = []
    for args in (["-4", "-j", "route", "show", "table", "all"], ["-4", "-j", "addr", "show"]):
        proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise NetPlanError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
        for entry in json.loads(proc.stdout or "[]"):
            for item in [entry, *entry.get("addr_info", [])]:
                dst = item.get("dst") or item.get("local")
                if not dst or dst == "default":
                    continue
                prefix = item.get("prefixlen", 32) if "local" in item else None
                text = f"{dst}/{prefix}" if prefix is not None and "/" not in dst else dst
                with contextlib.suppress(ValueError):
                    used.append(ipaddress.IPv4Network(text, strict=False))
    return used


def slot_is_clean(slot: int, in_use: Sequence[ipaddress.IPv4Network], span: int = 1) -> bool:
    network = slot_network(slot, span)
    return not any(net.overlaps(network) for net in in_use)


def lock_path(lock_dir: Path, slot: int) -> Path:
    return lock_dir / f"slot-{slot:02d}.lock"


@dataclass
class SlotLease:
    """Open, locked slot files: the slots belong to whoever holds ``fds`` (one per slot)."""

    plan: NetPlan
    fds: tuple[int, ...]
    paths: tuple[Path, ...]

    def release(self) -> None:
        _close(self.fds)


def _close(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _lock(paths: Sequence[Path]) -> tuple[int, ...] | None:
    """Locks on every one of ``paths``, or None (and nothing held) if one is taken."""
    fds: list[int] = []
    for path in paths:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fds.append(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _close(fds)
            return None
    return tuple(fds)


def lease_slot(owner: str, lock_dir: Path = LOCK_DIR, span: int = 1) -> SlotLease:
    """Lock the first ``span`` aligned slots that are free and clean; the caller passes
    ``fds`` to the agent."""
    if span not in spans():
        raise NetPlanError(f"span {span} must be one of {', '.join(map(str, spans()))}")
    lock_dir.mkdir(parents=True, exist_ok=True)
    in_use = host_networks_in_use()
    for slot in range(0, slot_count(), span):
        paths = tuple(lock_path(lock_dir, s) for s in range(slot, slot + span))
        fds = _lock(paths)
        if fds is None:
            continue
        if not slot_is_clean(slot, in_use, span):
            _close(fds)
            continue
        # The slot number makes the id unique among live clusters; the random part keeps it
        # apart from leftovers of an earlier cluster in the same slot.
        plan = NetPlan(slot=slot, cluster_id=f"{slot:02x}{secrets.token_hex(1)}", span=span)
        record = json.dumps({**plan.to_json(), "owner": owner, "pid": os.getpid()}) + "\n"
        for fd in fds:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode(), 0)
        return SlotLease(plan=plan, fds=fds, paths=paths)
    what = "address slot" if span == 1 else f"{span} aligned address slots"
    raise NetPlanError(
        f"no free {what} in {POOL}: all {slot_count()} slots are leased or still have host "
        f"routes (see {lock_dir} and `ip route`)"
    )
