"""A RagSystem backup to a volume, as the tests and benchmarks configure it.

``BACKUP_CLAIM`` is the PersistentVolumeClaim the backups go to; ``VOLUME_BACKUP`` is the
``spec.backup`` that points at it (a nightly schedule, the last three kept), so the backups
themselves are taken on demand or before an upgrade.
"""

from __future__ import annotations

from typing import Any, Final

VOLUME_BACKUP: Final[dict[str, Any]] = {
    "schedule": "0 3 * * *",
    "retention": {"keepLast": 3},
    "destination": {"volume": {"claimName": "backups"}},
}
BACKUP_CLAIM: Final[dict[str, Any]] = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "backups"},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
}
