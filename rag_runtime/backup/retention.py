"""Which backups a retention policy removes (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from rag_runtime.backup.manifest import Manifest


def to_remove(
    backups: Sequence[Manifest],
    *,
    now: dt.datetime,
    keep_last: int | None,
    max_age_days: float | None,
) -> list[str]:
    """Names of the complete backups to remove, oldest first.

    A backup goes when it is not among the `keep_last` newest, or is older than
    `max_age_days`; the newest backup always stays, so a policy never leaves none.
    """
    if keep_last is None and max_age_days is None:
        raise ValueError("give --keep-last or --max-age-days (or both)")
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"--keep-last {keep_last}: keep at least 1")
    if max_age_days is not None and max_age_days <= 0:
        raise ValueError(f"--max-age-days {max_age_days}: must be above 0")
    newest_first = sorted(backups, key=lambda m: (m.completed_at, m.name), reverse=True)
    doomed: list[str] = []
    for position, manifest in enumerate(newest_first):
        if position == 0:
            continue
        too_many = keep_last is not None and position >= keep_last
        too_old = max_age_days is not None and (now - manifest.completed_at) > dt.timedelta(
            days=max_age_days
        )
        if too_many or too_old:
            doomed.append(manifest.name)
    return list(reversed(doomed))
