"""The operator's policy over what a RagSystem may ask for: images and referenced Secrets.

Whoever may edit a RagSystem chooses the images its pods run and the Secrets of its namespace
those pods read (docs/security.md). Cluster operators narrow that with `OperatorConfig`:
`allowed_image_prefixes`, `allowed_secret_names` and `secret_label_selector`. These pure
functions name each refused field; the reconcile pass applies nothing for a refused object
and reports it Degraded.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rag_operator.builders.common import STORES, runtime_image, store_mode
from rag_operator.builders.runtime import SecretReference
from rag_operator.models import OperatorConfig, RagSystem

IMAGE_NOT_ALLOWED = "ImageNotAllowed"
SECRET_NOT_ALLOWED = "SecretNotAllowed"


@dataclass(frozen=True)
class Refusal:
    """A field the policy refuses: the reason (CamelCase) and a message naming the field."""

    reason: str
    message: str


def normalize_image(image: str) -> str:
    """The image in full: 'redis:7' -> 'docker.io/library/redis:7'."""
    first, slash, rest = image.partition("/")
    if not slash:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{first}/{rest}"


def image_allowed(image: str, prefixes: Iterable[str]) -> bool:
    full = normalize_image(image)
    for prefix in prefixes:
        if prefix.endswith(("/", ":", "@")):
            if full.startswith(prefix):
                return True
        elif full == prefix or full.startswith((f"{prefix}/", f"{prefix}:", f"{prefix}@")):
            return True
    return False


def spec_images(rs: RagSystem) -> list[tuple[str, str]]:
    """(field, image) for every image the spec itself names."""
    out = [("spec.image.repository", runtime_image(rs))]
    for store in STORES:
        managed = getattr(rs.spec, store).managed
        if store_mode(rs, store) == "managed" and managed is not None and managed.image:
            out.append((f"spec.{store}.managed.image", managed.image))
    return out


def image_refusals(rs: RagSystem, cfg: OperatorConfig) -> list[Refusal]:
    if not cfg.allowed_image_prefixes:
        return []
    allowed = ", ".join(cfg.allowed_image_prefixes)
    return [
        Refusal(
            IMAGE_NOT_ALLOWED,
            f"{path}: image {image!r} is not under a prefix the operator allows ({allowed})",
        )
        for path, image in spec_images(rs)
        if not image_allowed(image, cfg.allowed_image_prefixes)
    ]


def secret_name_refusal(ref: SecretReference, cfg: OperatorConfig) -> Refusal | None:
    """A refusal when the referenced Secret's name matches none of the allowed patterns."""
    patterns = cfg.allowed_secret_names
    if not patterns or any(fnmatch.fnmatchcase(ref.name, p) for p in patterns):
        return None
    return Refusal(
        SECRET_NOT_ALLOWED,
        f"{ref.path}: Secret {ref.name!r} does not match a name the operator allows "
        f"({', '.join(patterns)})",
    )


def label_requirements(selector: str) -> list[tuple[str, str | None]]:
    """'a=b,c' -> [('a', 'b'), ('c', None)] (None: the label must exist)."""
    out: list[tuple[str, str | None]] = []
    for part in filter(None, (p.strip() for p in selector.split(","))):
        key, eq, value = part.partition("=")
        out.append((key, value if eq else None))
    return out


def secret_label_refusal(
    ref: SecretReference, labels: Mapping[str, str], cfg: OperatorConfig
) -> Refusal | None:
    """A refusal when the referenced Secret lacks the labels the operator requires."""
    for key, value in label_requirements(cfg.secret_label_selector):
        if key not in labels or (value is not None and labels[key] != value):
            return Refusal(
                SECRET_NOT_ALLOWED,
                f"{ref.path}: Secret {ref.name!r} lacks the label "
                f"{cfg.secret_label_selector!r} the operator requires of referenced Secrets",
            )
    return None
