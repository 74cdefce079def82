"""API keys: how `RAG_API_KEYS` entries are read, and who a Bearer token is.

An entry is `key` (every collection), `key:*` (every collection) or `key:a,b` (collections
a and b). The scope starts after the last `:`, so a key may contain `:` when its scope is
written out (`ab:cd:*`). Parsing fails closed: an entry it cannot read stops the process
(naming the entry by position, never the key), and an empty scope grants nothing, not all.
Tokens are compared in constant time against every key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")  # as schemas.NAME_PATTERN
ALL = "*"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key id (never the key) and the collections it may use (None = all)."""

    key_id: str
    collections: frozenset[str] | None

    def can_access(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections


class KeyFormatError(ValueError):
    """An entry of RAG_API_KEYS that cannot be read; the message never holds the key."""


def parse_api_keys(entries: list[str]) -> dict[str, frozenset[str] | None]:
    """Key -> the collections it grants (None = every collection)."""
    keys: dict[str, frozenset[str] | None] = {}
    for position, entry in enumerate(entries, start=1):
        where = f"entry {position}"
        key, scope = entry, ALL
        if ":" in entry:
            key, _, scope = entry.rpartition(":")
        key = key.strip()
        if not key:
            raise KeyFormatError(f"{where}: the key is empty")
        if any(ch.isspace() for ch in key):
            raise KeyFormatError(f"{where}: the key contains whitespace")
        if key in keys:
            raise KeyFormatError(f"{where}: the same key is listed twice")
        keys[key] = _scope(where, scope)
    return keys


def _scope(where: str, scope: str) -> frozenset[str] | None:
    if scope.strip() == ALL:
        return None
    names = [n.strip() for n in scope.split(",")]
    if not any(names):
        raise KeyFormatError(
            f"{where}: no collections after ':' (write 'key:*' for every collection, "
            "'key:a,b' for some)"
        )
    bad = [n for n in names if not NAME_RE.match(n)]
    if bad:
        raise KeyFormatError(f"{where}: {len(bad)} collection name(s) are not valid names")
    return frozenset(names)


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class KeyRing:
    """The accepted keys; `identify` takes the same time whichever key (if any) matches."""

    def __init__(self, keys: dict[str, frozenset[str] | None]) -> None:
        self._keys = [(hashlib.sha256(k.encode()).digest(), k, v) for k, v in keys.items()]

    def __len__(self) -> int:
        return len(self._keys)

    def identify(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found: Principal | None = None
        for candidate, key, scope in self._keys:  # no early exit
            if hmac.compare_digest(candidate, digest):
                found = Principal(key_id(key), scope)
        return found
