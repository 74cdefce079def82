"""Status writes paced per system: progress waits a little, everything else is written at once.

A status write of a RagSystem is among the dearest requests the API server serves: the
custom resource is decoded, patched, validated against its schema and CEL rules and sent to
every watcher (the write is a JSON merge patch, `replacing_patch`: a server-side apply cost
the server more still). Under a burst (hundreds of systems coming up at once) most of a
system's status changes are progress: one more pod ready, a message naming what is still
awaited, one more component's condition (ApiReady, PostgresReady, ...) turning. Such a
change waits until `PROGRESS_INTERVAL_S` after the system's last status write (the pass
that finds it then writes it, whatever has changed meanwhile); a change of anything else
(phase, Ready, Progressing, Degraded or any other summary condition turning or changing its
reason, the migration, restore or rollout, the version, the observed generation) and any
pass with Events to post writes at once, so Ready, Degraded and every step of a release are
never held back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rag_operator.conditions import COMPONENT_CONDITIONS
from rag_operator.models import RagSystemStatus
from rag_operator.models.status import Components

PROGRESS_INTERVAL_S = 5.0
COMPONENT_TYPES = frozenset(COMPONENT_CONDITIONS.values())
Key = tuple[str, str]


def _without_progress(status: RagSystemStatus) -> dict[str, object]:
    """The status less what only says how far the system is."""
    conditions = [
        c.model_copy(update={"message": ""})
        for c in status.conditions
        if c.type not in COMPONENT_TYPES
    ]
    update: dict[str, object] = {"components": Components(), "ready_summary": "", "stores": ""}
    update["conditions"] = conditions
    for step in ("migration", "restore"):
        current = getattr(status, step)
        if current is not None:
            update[step] = current.model_copy(update={"message": ""})
    return status.model_copy(update=update).wire()


def progress_only(old: RagSystemStatus, new: RagSystemStatus) -> bool:
    """Whether `new` differs from `old` only in progress: component counts and conditions,
    the ready summary, the stores tally, the messages of the other conditions and of the
    migration and restore."""
    return _without_progress(old) == _without_progress(new)


def replacing_patch(new: Mapping[str, Any], *olds: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch that makes an object `new` whatever it was of `olds`: every field
    of `new`, and a null for each key an old one has that `new` has not (in nested objects
    too; lists are replaced whole). Cheaper for the API server than a server-side apply."""
    out: dict[str, Any] = dict(new)
    for key in {k for old in olds for k in old}:
        if key not in new:
            out[key] = None
        elif isinstance(new[key], Mapping):
            nested = [o[key] for o in olds if isinstance(o.get(key), Mapping)]
            if nested:
                out[key] = replacing_patch(new[key], *nested)
    return out


class StatusPacer:
    """Each system's status as last written, and when; whether a new one is written now.

    The comparison is with what this operator wrote last, not with the body of the pass: a
    watch that has not yet delivered the last write would make every change look new."""

    def __init__(self, interval_s: float = PROGRESS_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._written: dict[Key, tuple[float, RagSystemStatus]] = {}

    def due(self, key: Key, new: RagSystemStatus, events: bool, now: float) -> float | None:
        """None: write `new` now; else the (monotonic) time from which it is written (the
        pass that finds it then writes it)."""
        last = self._written.get(key)
        if last is None or events or now >= last[0] + self.interval_s:
            return None
        return last[0] + self.interval_s if progress_only(last[1], new) else None

    def written(self, key: Key, status: RagSystemStatus) -> bool:
        """Whether `status` is exactly what was last written (the watch has yet to show it)."""
        last = self.last(key)
        return last is not None and last.wire() == status.wire()

    def last(self, key: Key) -> RagSystemStatus | None:
        """The status this operator wrote last for the system (None: none since it started)."""
        found = self._written.get(key)
        return found[1] if found is not None else None

    def wrote(self, key: Key, status: RagSystemStatus, now: float) -> None:
        self._written[key] = (now, status)

    def forget(self, key: Key) -> None:
        self._written.pop(key, None)
