"""ClusterIP Services without kube-proxy: a user-space proxy on each ClusterIP.

For every Service whose ClusterIP is in this cluster's Service range and that has endpoints
on the real-pod network (plus ``default/kubernetes``, which leads to the API server), the
ClusterIP becomes a local address of the host's bridge and a listener on each TCP port hands
connections to a ready endpoint in turn (round robin), at the port the EndpointSlice names
for that Service port. This is what kube-proxy's old userspace mode did; pods reach it
through their default route, and the host reaches it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hack.node_agent import network
from hack.node_agent.netplan import NetPlan

log = logging.getLogger("node-agent.proxy")

Listener = tuple[str, int]  # (ClusterIP, port)
# May a client (address) reach an endpoint (address, port)? NetworkPolicy's answer.
Allows = Callable[[str, str, int], bool]


@dataclass(frozen=True)
class Backends:
    service: str
    addresses: tuple[tuple[str, int], ...]


def backends(
    plan: NetPlan,
    services: Iterable[Mapping[str, Any]],
    slices: Iterable[Mapping[str, Any]],
    apiserver_port: int,
) -> dict[Listener, Backends]:
    """Which listener sends to which endpoints (pure)."""
    by_service: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        name = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if name and sl.get("addressType") == "IPv4":
            by_service.setdefault((str(meta.get("namespace")), name), []).append(sl)
    out: dict[Listener, Backends] = {}
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        ip = spec.get("clusterIP")
        if not ip or ip == "None" or not plan.is_own(str(ip)):
            continue
        for port in spec.get("ports") or []:
            if port.get("protocol", "TCP") != "TCP":
                continue
            if (ns, name) == ("default", "kubernetes"):
                addrs: list[tuple[str, int]] = [("127.0.0.1", apiserver_port)]
            else:
                addrs = []
                for sl in by_service.get((ns, name), []):
                    target = next(
                        (
                            p.get("port")
                            for p in sl.get("ports") or []
                            if p.get("name", "") == port.get("name", "")
                        ),
                        None,
                    )
                    if target is None:
                        continue
                    for ep in sl.get("endpoints") or []:
                        if (ep.get("conditions") or {}).get("ready") is False:
                            continue
                        addrs += [
                            (str(a), int(target))
                            for a in ep.get("addresses") or []
                            if plan.in_pod_network(str(a))
                        ]
            if addrs:
                out[(str(ip), int(port["port"]))] = Backends(f"{ns}/{name}", tuple(sorted(addrs)))
    return out


class ServiceProxy:
    def __init__(self, plan: NetPlan, apiserver_port: int, allows: Allows | None = None) -> None:
        self.plan = plan
        self.allows = allows
        self.apiserver_port = apiserver_port
        self.table: dict[Listener, Backends] = {}
        self._servers: dict[Listener, asyncio.Server] = {}
        self._addresses: set[str] = set()
        self._turns: dict[Listener, itertools.count[int]] = {}
        self._lock = asyncio.Lock()

    async def sync(
        self, services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]]
    ) -> None:
        async with self._lock:
            self.table = backends(self.plan, services, slices, self.apiserver_port)
            for listener in [k for k in self._servers if k not in self.table]:
                server = self._servers.pop(listener)
                server.close()
            wanted_ips = {ip for ip, _ in self.table}
            for ip in wanted_ips - self._addresses:
                await asyncio.to_thread(network.add_service_ip, self.plan, ip)
                self._addresses.add(ip)
            for listener in self.table:
                if listener in self._servers:
                    continue
                try:
                    self._servers[listener] = await asyncio.start_server(
                        functools.partial(self._handle, listener), *listener
                    )
                except OSError as exc:
                    log.warning("cannot listen on %s:%s: %s", *listener, exc)
            for ip in self._addresses - wanted_ips:
                await asyncio.to_thread(network.remove_service_ip, self.plan, ip)
                self._addresses.discard(ip)

    async def close(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()
        for ip in list(self._addresses):
            await asyncio.to_thread(network.remove_service_ip, self.plan, ip)
        self._addresses.clear()

    async def _handle(
        self, key: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        entry = self.table.get(key)
        try:
            if entry is None or not entry.addresses:
                return
            turn = next(self._turns.setdefault(key, itertools.count()))
            host, port = entry.addresses[turn % len(entry.addresses)]
            self.plan.assert_own(host, f"traffic for Service {entry.service}")
            client = (writer.get_extra_info("peername") or ("",))[0]
            if self.allows is not None and client and not self.allows(client, host, port):
                # What a policy plugin does after kube-proxy's DNAT; closed rather than
                # dropped, so the client learns at once.
                log.debug("%s -> %s:%s refused by NetworkPolicy", client, host, port)
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), 10
                )
            except (OSError, TimeoutError):
                return
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
