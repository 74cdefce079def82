"""Host networking of one cluster: its bridge, one network namespace per pod, its routes.

Everything here acts through ``ip`` (iproute2) on objects named by :class:`NetPlan`, so
teardown removes exactly this cluster's objects. The bridge carries pod-to-pod traffic at
layer 2 (no forwarding is enabled anywhere); the host reaches pods through the bridge's
address, which is also the pods' default gateway and DNS server.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

from hack.node_agent.netplan import NetPlan

NETNS_DIR = Path("/run/netns")


class NetworkError(RuntimeError):
    """An ``ip`` command failed; the message quotes it."""


def _ip(args: Sequence[str], *, batch: str | None = None, check: bool = True) -> str:
    cmd = ["ip", *args] + (["-batch", "-"] if batch is not None else [])
    proc = subprocess.run(cmd, input=batch, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        detail = f" (batch:\n{batch})" if batch else ""
        raise NetworkError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}{detail}")
    return proc.stdout


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def setup_bridge(plan: NetPlan) -> None:
    """The cluster's bridge with the gateway address, and the slot's catch-all route."""
    teardown(plan)
    prefix = plan.pod_network.prefixlen
    _ip(
        [],
        batch="\n".join(
            [
                f"link add {plan.bridge} type bridge stp_state 0 forward_delay 0",
                f"addr add {plan.gateway}/{prefix} dev {plan.bridge}",
                f"link set {plan.bridge} up",
                # The rest of the slot (Service range, fake nodes' pods) has nobody behind it:
                # fail such connections here rather than send them to the default route.
                f"route add unreachable {plan.network}",
            ]
        )
        + "\n",
    )


def add_service_ip(plan: NetPlan, ip: str) -> None:
    """Make a ClusterIP a local address of the host (the Service proxy listens on it)."""
    plan.assert_own(ip, "a Service address")
    _ip(["addr", "replace", f"{ip}/32", "dev", plan.bridge])


def remove_service_ip(plan: NetPlan, ip: str) -> None:
    _ip(["addr", "del", f"{ip}/32", "dev", plan.bridge], check=False)


def create_pod_netns(plan: NetPlan, ip: ipaddress.IPv4Address) -> str:
    """A network namespace with ``eth0`` (``ip``) on the bridge and ``lo`` up; returns its name."""
    index = plan.pod_index(ip)
    name, veth = plan.netns(index), plan.veth(index)
    delete_pod_netns(plan, ip)
    _ip(
        [],
        batch=(
            f"netns add {name}\n"
            f"link add {veth} type veth peer name eth0 netns {name}\n"
            f"link set {veth} master {plan.bridge}\n"
            f"link set {veth} up\n"
        ),
    )
    _ip(
        ["-n", name],
        batch=(
            f"addr add {ip}/{plan.pod_network.prefixlen} dev eth0\n"
            "link set eth0 up\n"
            "link set lo up\n"
            f"route add default via {plan.gateway} dev eth0\n"
        ),
    )
    return name


def delete_pod_netns(plan: NetPlan, ip: ipaddress.IPv4Address) -> None:
    """Remove a pod's namespace and veth (no error when they are already gone)."""
    index = plan.pod_index(ip)
    _ip(["link", "del", plan.veth(index)], check=False)
    _ip(["netns", "del", plan.netns(index)], check=False)


def own_netns(plan: NetPlan) -> list[str]:
    out = _ip(["-j", "netns", "list"], check=False) or "[]"
    names = [entry["name"] for entry in json.loads(out)]
    return [n for n in names if n.startswith(f"{plan.prefix}-")]


def own_links(plan: NetPlan) -> list[str]:
    out = _ip(["-j", "link", "show"], check=False) or "[]"
    return [e["ifname"] for e in json.loads(out) if e.get("ifname", "").startswith(plan.prefix)]


def own_routes(plan: NetPlan) -> list[str]:
    """Host routes and addresses that fall inside this cluster's slot."""
    found: list[str] = []
    for args in (["-4", "-j", "route", "show", "table", "all"], ["-4", "-j", "addr", "show"]):
        for entry in json.loads(_ip(list(args), check=False) or "[]"):
            for item in [entry, *entry.get("addr_info", [])]:
                dst = item.get("dst") or item.get("local")
                if not dst or dst == "default":
                    continue
                try:
                    net = ipaddress.IPv4Network(dst, strict=False)
                except ValueError:
                    continue
                if net.overlaps(plan.network):
                    found.append(f"{item.get('type', 'addr')} {dst}")
    return found


def teardown(plan: NetPlan) -> None:
    """Remove every namespace, link and route of this cluster (idempotent)."""
    for name in own_netns(plan):
        _ip(["netns", "del", name], check=False)
    for link in own_links(plan):
        _ip(["link", "del", link], check=False)
    _ip(["route", "del", "unreachable", str(plan.network)], check=False)
