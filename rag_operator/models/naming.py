"""Names the operator writes onto objects: label keys and values, annotation keys, the field
manager and the finalizer. Defined here once; everything else imports them."""

from __future__ import annotations

# Standard labels on every child (selectors use NAME_LABEL, INSTANCE_LABEL, COMPONENT_LABEL).
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"

APP_NAME = "ragops"
PART_OF = "ragops"
OPERATOR_NAME = "ragops-operator"
MANAGED_BY = OPERATOR_NAME

# Server-side apply field manager of every write the operator makes.
FIELD_MANAGER = OPERATOR_NAME

# Label of the canary's pods (value canary).
TRACK_LABEL = "ragops.io/track"

# Annotations (prefix ragops.io/).
ANNOTATION_PREFIX = "ragops.io"
CONFIG_HASH_ANNOTATION = f"{ANNOTATION_PREFIX}/config-hash"
APPLIED_HASH_ANNOTATION = f"{ANNOTATION_PREFIX}/applied-hash"
FINALIZER = f"{ANNOTATION_PREFIX}/finalizer"
# On a RagSystem: a new value asks for another attempt of a failed migration.
RETRY_MIGRATION_ANNOTATION = f"{ANNOTATION_PREFIX}/retry-migration"

# Label selector of everything the operator manages.
MANAGED_SELECTOR = {MANAGED_BY_LABEL: MANAGED_BY}

# Manual rollout requests (kubectl ragops promote|abort|retry): a new value is a new request.
PROMOTE_ANNOTATION = f"{ANNOTATION_PREFIX}/rollout-promote"
ABORT_ANNOTATION = f"{ANNOTATION_PREFIX}/rollout-abort"
RETRY_ANNOTATION = f"{ANNOTATION_PREFIX}/rollout-retry"
# A promote request whose value starts with this skips every remaining step.
PROMOTE_FULL_PREFIX = "full:"
# Header of the operator's synthetic probe queries (the runtime counts them as origin=probe).
PROBE_HEADER = "X-Ragops-Probe"
