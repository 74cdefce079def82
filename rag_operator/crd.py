"""Generate the structural RagSystem CRD from the pydantic models.

`python -m rag_operator.crd --write crds/` writes `crds/ragops.io_ragsystems.yaml`, the
chart's copy of the CRD and the chart's RBAC rules (`rag_operator.rbac`); without `--write`
it prints the YAML; `--check DIR` exits 1 when the file in DIR is stale.

Rules that make the schema structural (and that `tests/unit/operator/test_crd.py` checks):
every `$ref` is inlined, `Optional[X]` becomes `X` with `nullable: true`, no `title`, no
`additionalProperties: false`, no `type` inside `anyOf`; defaults are complete values
without nulls (the API server checks a default against its schema's CEL rules).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from rag_operator import rbac
from rag_operator.models import (
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    RagSystemSpec,
    RagSystemStatus,
)
from rag_operator.models.ragbackup import (
    BACKUP_KIND,
    BACKUP_PLURAL,
    BACKUP_SHORT_NAMES,
    BACKUP_SINGULAR,
    RagBackupSpec,
    RagBackupStatus,
)
from rag_operator.models.spec import NAME_RULE

FILENAME = f"{GROUP}_{PLURAL}.yaml"
BACKUP_FILENAME = f"{GROUP}_{BACKUP_PLURAL}.yaml"
_DROP = {"title", "$defs", "discriminator"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline `$ref`, turn `anyOf [X, null]` into nullable X, drop titles."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        merged = dict(_resolve(target, defs))
        # The field's own keys (description, default) win over the referenced model's.
        for key, value in node.items():
            merged[key] = _resolve(value, defs)
        node = merged
    if "anyOf" in node:
        options = node["anyOf"]
        non_null = [o for o in options if o.get("type") != "null"]
        if len(non_null) < len(options) and len(non_null) == 1:
            node.pop("anyOf")
            inner = _resolve(non_null[0], defs)
            merged = dict(inner)
            for key, value in node.items():
                if key == "default" and value is None:
                    continue
                merged[key] = _resolve(value, defs)
            merged["nullable"] = True
            node = merged
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "additionalProperties" and value is False:
            continue
        if key in ("properties",):
            out[key] = {k: _resolve(v, defs) for k, v in value.items()}
        elif key in ("default", "enum", "x-kubernetes-validations", "required", "examples"):
            out[key] = value
        else:
            out[key] = _resolve(value, defs)
    return out


def _is_object(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object" and "properties" in schema


def _reduce_default(value: Any, schema: dict[str, Any]) -> Any:
    """The default as the API server should store it: complete, without nulls.

    Defaults must be complete because the API server checks them against the CEL rules of
    their own schema before it would fill nested defaults.
    """
    if not (_is_object(schema) and isinstance(value, dict)):
        return value
    out: dict[str, Any] = {}
    for key, sub_value in value.items():
        sub = schema["properties"].get(key)
        if sub is None or sub_value is None:
            continue
        out[key] = _reduce_default(sub_value, sub)
    return out


def _fix_defaults(schema: dict[str, Any]) -> None:
    for sub in schema.get("properties", {}).values():
        _fix_defaults(sub)
        if "default" not in sub:
            continue
        default = sub["default"]
        if default is None or (default in ([], {}) and not _is_object(sub)):
            del sub["default"]
        elif _is_object(sub):
            sub["default"] = _reduce_default(default, sub)
    if isinstance(schema.get("items"), dict):
        _fix_defaults(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        _fix_defaults(schema["additionalProperties"])


def _object_defaults(schema: dict[str, Any], value: dict[str, Any]) -> None:
    """Give non-nullable object properties the (reduced) default of the model instance."""
    for key, sub in schema.get("properties", {}).items():
        sub_value = value.get(key)
        if not (_is_object(sub) and isinstance(sub_value, dict)):
            continue
        if "default" not in sub and not sub.get("nullable"):
            sub["default"] = _reduce_default(sub_value, sub)
        _object_defaults(sub, sub_value)


def _enums_to_strings(schema: dict[str, Any]) -> None:
    if "enum" in schema and "type" not in schema:
        schema["type"] = "string"
    for sub in schema.get("properties", {}).values():
        _enums_to_strings(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _enums_to_strings(schema[key])


def model_schema(model: type[Any]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _resolve(raw, defs)
    _enums_to_strings(schema)
    _fix_defaults(schema)
    return copy.deepcopy(schema)


def _status_schema(model: type[Any] = RagSystemStatus) -> dict[str, Any]:
    schema = model_schema(model)

    def strip(node: dict[str, Any]) -> None:
        # Status is written whole by the operator: no API-server defaults there.
        node.pop("default", None)
        node.pop("required", None) if node is schema else None
        for sub in node.get("properties", {}).values():
            strip(sub)
        if isinstance(node.get("items"), dict):
            strip(node["items"])

    strip(schema)
    return schema


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


PRINTER_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "Phase",
        "type": "string",
        "jsonPath": ".status.phase",
        "description": "Pending, Progressing, Ready, Degraded or Deleting.",
    },
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        "description": "Status of the Ready condition.",
    },
    {
        "name": "Version",
        "type": "string",
        "jsonPath": ".status.version",
        "description": "Runtime version every ready pod runs.",
    },
    {
        "name": "Desired",
        "type": "string",
        "jsonPath": ".spec.version",
        "description": "Runtime version asked for.",
    },
    {
        "name": "Migration",
        "type": "string",
        "jsonPath": ".status.migration.phase",
        "description": "Schema migration of the desired version: Pending, Running, Succeeded "
        "or Failed.",
    },
    {
        "name": "Canary",
        "type": "integer",
        "jsonPath": ".status.rollout.weight",
        "description": "Percent of the traffic the canary receives.",
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {
        "name": "LastGood",
        "type": "string",
        "jsonPath": ".status.lastGoodVersion",
        "priority": 1,
        "description": "The last version at which the whole system was Ready.",
    },
    {
        "name": "LastBackup",
        "type": "date",
        "jsonPath": ".status.backup.lastSuccessfulTime",
        "priority": 1,
        "description": "Age of the last good backup.",
    },
    {
        "name": "Rollout",
        "type": "string",
        "jsonPath": ".status.rollout.phase",
        "priority": 1,
        "description": "Progressing, Paused, Promoting, RolledBack or Succeeded.",
    },
    {
        "name": "Endpoint",
        "type": "string",
        "jsonPath": ".status.endpoint",
        "priority": 1,
        "description": "In-cluster URL of the API.",
    },
    {
        "name": "Components",
        "type": "string",
        "jsonPath": ".status.readySummary",
        "priority": 1,
        "description": "Ready components out of enabled ones.",
    },
    {
        "name": "Stores",
        "type": "string",
        "jsonPath": ".status.stores",
        "priority": 1,
        "description": "Readiness of Postgres, Redis and Neo4j.",
    },
]


def build_crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition."""
    spec = model_schema(RagSystemSpec)
    defaults = RagSystemSpec(version="0").model_dump(by_alias=True, mode="json")
    _object_defaults(spec, defaults)
    spec["description"] = "What the user asks for: runtime version, API, worker, stores, settings."
    status = _status_schema()
    status["description"] = "What the operator observed; written only by the operator."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "ragops"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["ragops"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A retrieval-augmented generation system run by "
                            "the ragops operator: API, worker, Postgres, Redis and Neo4j.",
                            "required": ["spec"],
                            "x-kubernetes-validations": [NAME_RULE],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "API version."},
                                "kind": {"type": "string", "description": "Kind: RagSystem."},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


BACKUP_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "System",
        "type": "string",
        "jsonPath": ".spec.systemRef.name",
        "description": "The RagSystem backed up.",
    },
    {
        "name": "Phase",
        "type": "string",
        "jsonPath": ".status.phase",
        "description": "Pending, Running, Completed or Failed.",
    },
    {"name": "Size", "type": "string", "jsonPath": ".status.size", "description": "Backup size."},
    {
        "name": "Started",
        "type": "date",
        "jsonPath": ".status.startedAt",
        "description": "When the backup started.",
    },
    {
        "name": "Completed",
        "type": "date",
        "jsonPath": ".status.completedAt",
        "description": "When it completed or failed.",
    },
    {
        "name": "Location",
        "type": "string",
        "jsonPath": ".status.location",
        "priority": 1,
        "description": "URL of the backup.",
    },
]


def build_backup_crd() -> dict[str, Any]:
    """The RagBackup CustomResourceDefinition."""
    spec = model_schema(RagBackupSpec)
    spec["description"] = "What to back up (a RagSystem) and where."
    status = _status_schema(RagBackupStatus)
    status["description"] = "What the operator observed; written only by the operator."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{BACKUP_PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "ragops"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": BACKUP_KIND,
                "listKind": f"{BACKUP_KIND}List",
                "plural": BACKUP_PLURAL,
                "singular": BACKUP_SINGULAR,
                "shortNames": list(BACKUP_SHORT_NAMES),
                "categories": ["ragops"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": BACKUP_PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "One backup of a RagSystem's data, on demand; "
                            "restore a new RagSystem from it with spec.bootstrap.backup.",
                            "required": ["spec"],
                            "x-kubernetes-validations": [
                                {
                                    "rule": "self.spec == oldSelf.spec",
                                    "message": "spec is immutable: a RagBackup is one backup",
                                    "fieldPath": ".spec",
                                }
                            ],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "API version."},
                                "kind": {"type": "string", "description": "Kind: RagBackup."},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def render(crd: dict[str, Any] | None = None) -> str:
    """A CRD (default: RagSystem) as YAML text, as written to crds/."""
    header = "# Generated by `make crds` (python -m rag_operator.crd) from rag_operator/models.\n"
    header += "# Do not edit by hand.\n"
    return header + yaml.dump(crd or build_crd(), Dumper=_Dumper, sort_keys=False, width=100)


def generated() -> dict[str, dict[str, Any]]:
    """Every CRD the operator serves, by file name."""
    return {FILENAME: build_crd(), BACKUP_FILENAME: build_backup_crd()}


CHART_TEMPLATE = (
    Path(__file__).resolve().parent.parent / "charts" / "ragops" / "templates" / "crds" / FILENAME
)


def render_chart_template(crd: dict[str, Any] | None = None) -> str:
    """A CRD (default: RagSystem) as the Helm chart ships it: behind crds.create, kept on
    uninstall."""
    crd = crd or build_crd()
    crd["metadata"]["annotations"] = {"helm.sh/resource-policy": "keep"}
    body = yaml.dump(crd, Dumper=_Dumper, sort_keys=False, width=100)
    body = body.replace(
        "  annotations:\n    helm.sh/resource-policy: keep\n",
        "  {{- if .Values.crds.keep }}\n  annotations:\n    helm.sh/resource-policy: keep\n"
        "  {{- end }}\n",
    )
    return (
        "{{- if .Values.crds.create }}\n"
        "# Generated by `make crds` (python -m rag_operator.crd) from rag_operator/models.\n"
        + body
        + "{{- end }}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", type=Path, metavar="DIR", help="write the CRD into DIR")
    parser.add_argument("--check", type=Path, metavar="DIR", help="fail when DIR is stale")
    args = parser.parse_args(argv)
    crds = generated()
    if args.check:
        for name, crd in crds.items():
            path = args.check / name
            if not path.exists() or path.read_text() != render(crd):
                print(f"{path} is stale: run `make crds`", file=sys.stderr)
                return 1
        return 0
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        for name, crd in crds.items():
            (args.write / name).write_text(render(crd))
            print(f"wrote {args.write / name}")
        if CHART_TEMPLATE.parent.is_dir():
            for name, crd in crds.items():
                (CHART_TEMPLATE.parent / name).write_text(render_chart_template(crd))
                print(f"wrote {CHART_TEMPLATE.parent / name}")
            rbac.HELPERS.write_text(rbac.render_helpers())
            print(f"wrote {rbac.HELPERS}")
        return 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
