"""Drift: does a child need to be applied again?

A child is in sync when two things hold:

- the `ragops.io/applied-hash` annotation on the live object is the hash of the manifest the
  builders produce now. The operator stamps that hash on every apply, so a spec change that
  only removes something (a namespace from a list, a hostname, a pull secret) still changes
  the hash and gets applied; server-side apply then drops the fields the operator no longer
  sets;
- every field of the manifest has the same value on the live object (`matches`), which
  catches hand edits: scaled, edited or partly deleted children.

An unchanged system therefore compares equal and costs no writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from rag_operator.builders.common import stable_hash
from rag_operator.models.naming import APPLIED_HASH_ANNOTATION

_SUFFIXES: dict[str, Decimal] = {
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}


def quantity(text: str) -> Decimal | None:
    """A Kubernetes quantity ("1Gi", "500m", "2") as a number; None when it is not one."""
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            number, scale = text[: -len(suffix)], _SUFFIXES[suffix]
            break
    else:
        number, scale = text, Decimal(1)
    try:
        return Decimal(number) * scale
    except InvalidOperation:
        return None


def matches(desired: Any, observed: Any) -> bool:
    """True when every field of `desired` has the same value in `observed`.

    Extra fields in `observed` (defaults, other managers' fields, extra list items) are fine;
    quantities compare by value ("1000m" == "1"), empty maps and lists match absence.
    Removals are found by the applied hash (`in_sync`), not here.
    """
    if isinstance(desired, dict):
        if observed is None:
            return not desired
        if not isinstance(observed, dict):
            return False
        return all(matches(v, observed.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        if observed is None:
            return not desired
        if not isinstance(observed, list) or len(observed) < len(desired):
            return False
        # The live list is nearly always in the applied order: try the same position first.
        return all(
            matches(d, observed[i]) or any(matches(d, o) for o in observed)
            for i, d in enumerate(desired)
        )
    if isinstance(desired, bool) or isinstance(observed, bool):
        return desired is observed
    if desired == observed:
        return True
    if isinstance(desired, str) and isinstance(observed, str):
        left, right = quantity(desired), quantity(observed)
        return left is not None and left == right
    if isinstance(desired, int | float) and isinstance(observed, int | float):
        return float(desired) == float(observed)
    return False


def applied_hash(manifest: Mapping[str, Any]) -> str:
    """The hash stamped on a child: of the manifest as the builders produced it."""
    return stable_hash(manifest)


def stamp(manifest: dict[str, Any], digest: str) -> dict[str, Any]:
    """The manifest to apply: with the applied hash among its annotations."""
    meta = dict(manifest["metadata"])
    meta["annotations"] = {**(meta.get("annotations") or {}), APPLIED_HASH_ANNOTATION: digest}
    return {**manifest, "metadata": meta}


# Live objects already compared equal: uid -> (resourceVersion, applied hash). A child that
# has not changed since it matched matches again, so a pass skips the deep comparison; any
# write to the child (a hand edit included) gives it a new resourceVersion. One entry per
# child (the newest match replaces the older), so the memo holds every live child of a large
# cluster without turning over; the bound only drops the oldest of deleted children.
_MATCHED: dict[str, tuple[str, str]] = {}
_MATCHED_MAX = 65536


def in_sync(to_apply: Mapping[str, Any], observed: Mapping[str, Any] | None, digest: str) -> bool:
    """Whether the live child already is what applying `to_apply` would make it."""
    if observed is None:
        return False
    meta = observed.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if annotations.get(APPLIED_HASH_ANNOTATION) != digest:
        return False
    uid, version = str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")
    if uid and version and _MATCHED.get(uid) == (version, digest):
        return True
    if not matches(to_apply, observed):
        return False
    if uid and version:
        _MATCHED.pop(uid, None)  # re-inserted last: the oldest entries are dropped first
        if len(_MATCHED) >= _MATCHED_MAX:
            _MATCHED.pop(next(iter(_MATCHED)))
        _MATCHED[uid] = (version, digest)
    return True


def keep_immutable(desired: dict[str, Any], observed: Mapping[str, Any] | None) -> dict[str, Any]:
    """StatefulSet volumeClaimTemplates cannot change: apply the existing ones."""
    if observed is None or desired["kind"] != "StatefulSet":
        return desired
    current = (observed.get("spec") or {}).get("volumeClaimTemplates")
    if not current:
        return desired
    kept = [
        {
            "metadata": {"name": t["metadata"]["name"], "labels": t["metadata"].get("labels", {})},
            "spec": {k: v for k, v in t.get("spec", {}).items() if k != "volumeMode"},
        }
        for t in current
    ]
    return {**desired, "spec": {**desired["spec"], "volumeClaimTemplates": kept}}


def claim_size(sts: Mapping[str, Any]) -> str | None:
    """The storage request of a StatefulSet's (first) volume claim template."""
    for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
        requests = ((template.get("spec") or {}).get("resources") or {}).get("requests") or {}
        size = requests.get("storage")
        if isinstance(size, str):
            return size
    return None
