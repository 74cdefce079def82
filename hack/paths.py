"""Where local state and build caches live."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Build caches (binaries, jars, templates): $RAGOPS_CACHE or ~/.cache/ragops."""
    return Path(os.environ.get("RAGOPS_CACHE", Path.home() / ".cache" / "ragops"))


def state_dir() -> Path:
    """Runtime state of local services and clusters: <repo>/.state (gitignored)."""
    return Path(os.environ.get("RAGOPS_STATE", REPO_ROOT / ".state"))
