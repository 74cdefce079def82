"""Backups and restore of a system's data (`rag-runtime backup ...`, `rag-runtime restore`)."""

from __future__ import annotations

from rag_runtime.backup.operations import BackupError
from rag_runtime.backup.postgres import PostgresError
from rag_runtime.backup.s3 import S3Error
from rag_runtime.backup.storage import DestinationError, open_destination

__all__ = ["BackupError", "DestinationError", "PostgresError", "S3Error", "open_destination"]
