"""Orphans of pods: the agent adopts and reaps them, as a container runtime's shim does.

A container's main process is the agent's own child (asyncio reaps it). Its descendants are
not: when the main process dies first (a Postgres backend, a worker's parser child, a
process the group kill reached last), they are re-parented. Without a subreaper they go to
the machine's init, which reaps on its own schedule, so a deleted pod could leave zombies
that still name its cgroup. The agent registers as the child subreaper of everything it
starts, and reaps the zombies whose cgroup is under a pod of its own; it never waits for a
process it did not adopt (those are asyncio's to reap).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import time
from collections.abc import Collection
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
PROC = Path("/proc")


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process; False when the kernel refuses."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0


def _stat(pid: str) -> tuple[str, int] | None:
    """(state, parent pid) of a process, from /proc/PID/stat; None when it is gone."""
    try:
        text = (PROC / pid / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: fields follow the last ')'.
    fields = text[text.rfind(")") + 2 :].split()
    return fields[0], int(fields[1])


def adopted_zombies(mark: str, keep: Collection[int] = ()) -> list[int]:
    """This process's zombie children whose cgroup path contains ``mark``, except ``keep``."""
    me = os.getpid()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) in keep:
            continue
        stat = _stat(entry.name)
        if stat is None or stat != ("Z", me):
            continue
        try:
            cgroups = (entry / "cgroup").read_text()
        except OSError:
            continue
        if mark in cgroups:
            found.append(int(entry.name))
    return found


def reap(pids: Collection[int]) -> int:
    """Wait for each (already exited) pid without blocking; how many were reaped."""
    reaped = 0
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            reaped += done == pid
    return reaped


def reap_until_clear(mark: str, keep: Collection[int] = (), timeout: float = 5.0) -> list[int]:
    """Reap the adopted zombies under ``mark`` until none is left; returns those still left
    after ``timeout`` seconds (a process re-parented late, or one another waiter holds)."""
    deadline = time.monotonic() + timeout
    while pids := adopted_zombies(mark, keep):
        reap(pids)
        if time.monotonic() > deadline:
            return adopted_zombies(mark, keep)
        time.sleep(0.02)
    return []
