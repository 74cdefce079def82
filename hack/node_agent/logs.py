"""Container output kept by the node agent, and how to find it.

Each container's output goes to ``<agent dir>/pods/<ns>_<pod>_<uid>/logs/<container>/<n>.log``,
one file per start (``n`` is the restart count at that start), so the current run and the
previous one can both be read, as ``kubectl logs`` and ``kubectl logs --previous`` would.
A pod's files go when its object is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class LogsError(LookupError):
    """No such pod or container, or nothing logged."""


@dataclass(frozen=True)
class PodLogs:
    namespace: str
    name: str
    uid: str
    root: Path

    def containers(self) -> list[str]:
        logs = self.root / "logs"
        return sorted(p.name for p in logs.iterdir()) if logs.is_dir() else []

    def runs(self, container: str) -> list[Path]:
        files = (self.root / "logs" / container).glob("*.log")
        return sorted(files, key=lambda p: int(p.stem))


def find_pods(pods_dir: Path, name: str, namespace: str | None = None) -> list[PodLogs]:
    """Pods called ``name`` (in ``namespace`` if given) that the agent runs or ran."""
    found = []
    for entry in sorted(pods_dir.glob("*_*_*")) if pods_dir.is_dir() else []:
        ns, pod, uid = entry.name.split("_", 2)
        if pod == name and (namespace is None or ns == namespace):
            found.append(PodLogs(ns, pod, uid, entry))
    return found


def read_logs(
    pods_dir: Path,
    name: str,
    namespace: str | None = None,
    container: str | None = None,
    previous: bool = False,
) -> str:
    """The output of one container (the only one, or ``container``), current or previous run."""
    pods = find_pods(pods_dir, name, namespace)
    if not pods:
        where = f" in namespace {namespace}" if namespace else ""
        raise LogsError(f"no real pod named {name!r}{where} (kwok pods have no output)")
    if len(pods) > 1:
        spaces = ", ".join(p.namespace for p in pods)
        raise LogsError(f"pod {name!r} exists in several namespaces ({spaces}): give one")
    pod = pods[0]
    names = pod.containers()
    if container is None:
        if len(names) != 1:
            raise LogsError(f"pod {name} has containers {names}: name one")
        container = names[0]
    if container not in names:
        raise LogsError(f"pod {name} has no container {container!r} (it has {names})")
    runs = pod.runs(container)
    if previous:
        if len(runs) < 2:
            raise LogsError(f"container {container!r} of pod {name} has not restarted")
        return runs[-2].read_text(errors="replace")
    return runs[-1].read_text(errors="replace") if runs else ""
