"""Probes and lifecycle hooks executed for real: httpGet, tcpSocket, exec (and sleep hooks).

An HTTP probe succeeds on a status in [200, 400), as the kubelet's does; a TCP probe when the
connection opens; an exec probe when the command, run inside the container (its mount, UTS,
IPC and network namespaces, its root, user and environment, via ``nsenter``), exits 0. Every
probe has the probe's ``timeoutSeconds``. Probe traffic goes only to the pod's own address.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

USER_AGENT = "kube-probe/1.37"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class Target:
    """Where a container's probes go and how its exec probes run."""

    ip: str
    ports: Mapping[str, int]
    pid: int | None
    env: Mapping[str, str]
    uid: int
    gid: int


def resolve_port(port: Any, ports: Mapping[str, int]) -> int:
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    if port in ports:
        return ports[port]
    raise ValueError(f"port {port!r} is not a named port of the container")


async def http_get(
    ip: str, port: int, path: str, headers: Sequence[Mapping[str, str]], limit: float
) -> ProbeResult:
    host = next((h["value"] for h in headers if h.get("name", "").lower() == "host"), ip)
    lines = [
        f"GET {path or '/'} HTTP/1.1",
        f"Host: {host}",
        f"User-Agent: {USER_AGENT}",
        "Accept: */*",
        "Connection: close",
    ]
    lines += [
        f"{h['name']}: {h.get('value', '')}" for h in headers if h.get("name", "").lower() != "host"
    ]
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), limit)
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), limit)
        parts = status_line.decode(errors="replace").split()
        if len(parts) < 2 or not parts[1].isdigit():
            return ProbeResult(False, f"HTTP probe failed: malformed response {status_line!r}")
        code = int(parts[1])
        if 200 <= code < 400:
            return ProbeResult(True)
        return ProbeResult(False, f"HTTP probe failed with statuscode: {code}")
    except TimeoutError:
        return ProbeResult(False, f'Get "http://{ip}:{port}{path}": context deadline exceeded')
    except OSError as exc:
        return ProbeResult(False, f'Get "http://{ip}:{port}{path}": {exc.strerror or exc}')
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def tcp_socket(ip: str, port: int, limit: float) -> ProbeResult:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), limit)
    except TimeoutError:
        return ProbeResult(False, f"dial tcp {ip}:{port}: i/o timeout")
    except OSError as exc:
        return ProbeResult(False, f"dial tcp {ip}:{port}: {exc.strerror or exc}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(True)


def nsenter_argv(target: Target, command: Sequence[str]) -> list[str]:
    if target.pid is None:
        raise ValueError("the container is not running")
    return [
        "nsenter",
        f"--target={target.pid}",
        "--mount",
        "--uts",
        "--ipc",
        "--net",
        "--root",
        "--wd",
        f"--setgid={target.gid}",
        f"--setuid={target.uid}",
        "--",
        *command,
    ]


async def exec_in(target: Target, command: Sequence[str], limit: float) -> ProbeResult:
    if not command:
        return ProbeResult(False, "exec probe has no command")
    try:
        proc = await asyncio.create_subprocess_exec(
            *nsenter_argv(target, command),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(target.env),
        )
    except (OSError, ValueError) as exc:
        return ProbeResult(False, f"exec {command[0]}: {exc}")
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return ProbeResult(False, f"command {list(command)} timed out")
    if proc.returncode == 0:
        return ProbeResult(True)
    text = out.decode(errors="replace").strip()[-1024:]
    return ProbeResult(False, f"command {list(command)} exited {proc.returncode}: {text}")


async def run_handler(handler: Mapping[str, Any], target: Target, limit: float) -> ProbeResult:
    """One probe or hook (``httpGet``, ``tcpSocket``, ``exec``, ``sleep``; grpc is refused)."""
    try:
        if "httpGet" in handler:
            spec = handler["httpGet"]
            port = resolve_port(spec.get("port"), target.ports)
            ip = spec.get("host") or target.ip
            if ip != target.ip:
                return ProbeResult(False, f"httpGet host {ip!r} is not the pod's address")
            return await http_get(
                ip, port, spec.get("path", "/"), spec.get("httpHeaders") or [], limit
            )
        if "tcpSocket" in handler:
            spec = handler["tcpSocket"]
            port = resolve_port(spec.get("port"), target.ports)
            return await tcp_socket(target.ip, port, limit)
        if "exec" in handler:
            return await exec_in(target, handler["exec"].get("command") or [], limit)
        if "sleep" in handler:
            await asyncio.sleep(float(handler["sleep"].get("seconds", 0)))
            return ProbeResult(True)
    except ValueError as exc:
        return ProbeResult(False, str(exc))
    kinds = sorted(k for k in handler if k not in _TIMING)
    return ProbeResult(False, f"unsupported probe handler {kinds} (httpGet, tcpSocket, exec are)")


_TIMING = {
    "initialDelaySeconds",
    "periodSeconds",
    "timeoutSeconds",
    "successThreshold",
    "failureThreshold",
    "terminationGracePeriodSeconds",
}


@dataclass(frozen=True)
class Timing:
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int


def timing(probe: Mapping[str, Any]) -> Timing:
    """A probe's timing fields with the API's defaults."""
    return Timing(
        initial_delay=float(probe.get("initialDelaySeconds", 0)),
        period=float(max(1, probe.get("periodSeconds", 10))),
        timeout=float(max(1, probe.get("timeoutSeconds", 1))),
        success_threshold=int(max(1, probe.get("successThreshold", 1))),
        failure_threshold=int(max(1, probe.get("failureThreshold", 3))),
    )
