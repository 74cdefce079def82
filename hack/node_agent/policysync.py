"""The node agent's side of NetworkPolicy: keep each real pod's nftables table in step with
the policies, namespaces and pods of the cluster, and answer the Service proxy's question
(see netpolicy for the semantics and what differs from a CNI plugin)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hack.node_agent import netpolicy, network
from hack.node_agent.netplan import NetPlan

log = logging.getLogger("node-agent.netpol")


class PolicyError(RuntimeError):
    pass


@dataclass(frozen=True)
class Sandbox:
    """A real pod with its network namespace: what gets a table."""

    uid: str
    pod: Mapping[str, Any]
    ip: str
    netns: str


def apply_script(netns: str, script: str) -> None:
    """Load an nft script inside a network namespace (atomically: all or nothing)."""
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-f", "-"],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise PolicyError(f"nft in {netns} failed: {proc.stderr.strip()}\n{script}")


def _with_ip(pod: Mapping[str, Any], ip: str) -> dict[str, Any]:
    """The pod with its address as the agent knows it (status may not carry it yet)."""
    return {**pod, "status": {**(pod.get("status") or {}), "podIP": ip}}


class PolicyEnforcer:
    def __init__(self, plan: NetPlan) -> None:
        self.plan = plan
        self.host_nets = [str(plan.gateway), str(plan.service_cidr)]
        self.view = netpolicy.ClusterView((), {}, ())
        self._applied: dict[tuple[str, str], str] = {}  # (uid, netns) -> script
        self._in_step = False  # the last refresh found every table as `view` wants it

    def refresh(
        self,
        sandboxes: Iterable[Sandbox],
        namespaces: Iterable[Mapping[str, Any]],
        policies: Iterable[Mapping[str, Any]],
    ) -> list[tuple[Sandbox, str]]:
        """Recompute the view; the (sandbox, script) pairs whose table must change.

        Most wake-ups are pod status writes that change nothing policies look at (addresses,
        labels, named ports, namespace labels, the policies): once a refresh of the same view
        found every table in step, no script is rebuilt. Until then (a caller may apply only
        part of what a refresh returned, as a new sandbox does) each refresh recomputes."""
        boxes = list(sandboxes)
        view = netpolicy.cluster_view([_with_ip(b.pod, b.ip) for b in boxes], namespaces, policies)
        live = {(b.uid, b.netns) for b in boxes}
        if self._in_step and view == self.view and live == set(self._applied):
            return []
        self.view = view
        for key in [k for k in self._applied if k not in live]:
            del self._applied[key]
        changes = []
        for box in boxes:
            pod = self.view.pod_at(box.ip)
            if pod is None:
                continue
            script = netpolicy.nft_script(self.view, pod, self.host_nets)
            if self._applied.get((box.uid, box.netns)) != script:
                changes.append((box, script))
        self._in_step = not changes
        return changes

    async def apply(self, changes: list[tuple[Sandbox, str]]) -> bool:
        """Load the changed tables; False when one failed (the caller retries)."""
        ok = True
        for box, script in changes:
            if not network.netns_path(box.netns).exists():
                continue  # the pod is going away: nothing left to guard
            try:
                await asyncio.to_thread(apply_script, box.netns, script)
            except PolicyError as exc:
                log.warning("%s", exc)
                ok = False
                continue
            self._applied[(box.uid, box.netns)] = script
        return ok

    def allows(self, src_ip: str, dst_ip: str, port: int) -> bool:
        """The Service proxy's question: may `src_ip` reach endpoint `dst_ip`:`port`? The
        host (not a pod address) always may, as in the pods' own tables."""
        address = ipaddress.ip_address(src_ip)
        if address == self.plan.gateway or address not in self.plan.pod_network:
            return True
        return netpolicy.allows(self.view, src_ip, dst_ip, port)
