"""A container's environment and argv, resolved the way a kubelet resolves them (pure).

Order, as in the kubelet: ``envFrom`` sources in order (later ones win, each with its
``prefix``), then ``env`` entries in order (``value`` with ``$(VAR)`` expansion over what is
defined so far and the Service variables, or ``valueFrom`` a ConfigMap key, a Secret key, a
pod field or a resource field), then the Service link variables that are not defined yet. The
image's ENV is the base the container's variables override. ``command`` and ``args`` are
expanded with the same variables. A missing ConfigMap, Secret or key that is not ``optional``
is a :class:`ConfigError`, which the agent reports as ``CreateContainerConfigError``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Lookup = Callable[[str], Mapping[str, str] | None]


class ConfigError(ValueError):
    """The container's configuration refers to something that does not exist."""


def expand(text: str, variables: Callable[[str], str | None]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known names are replaced, unknown ones kept as written,
    ``$$`` is a literal ``$``, and an unterminated ``$(`` stays as it is."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close == -1:
                out.append("$(")
                i += 2
            else:
                name = text[i + 2 : close]
                value = variables(name)
                out.append(value if value is not None else f"$({name})")
                i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Quantities (for resourceFieldRef)

_SUFFIXES: dict[str, Decimal | int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(text: str | int | float) -> Decimal:
    """A Kubernetes quantity (``250m``, ``1Gi``, ``2``) as a number."""
    match = _QUANTITY.match(str(text).strip())
    if match is None or match.group(2) not in _SUFFIXES:
        raise ConfigError(f"invalid quantity {text!r}")
    return Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2)])


def resource_value(
    resources: Mapping[str, Any], resource: str, divisor: str | None, node_allocatable: Any
) -> str:
    """``limits.cpu`` etc. divided by ``divisor``, rounded up; unset limits give the node's."""
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
        raise ConfigError(f"unsupported resourceFieldRef resource {resource!r}")
    value = (resources.get(kind) or {}).get(name)
    if value is None and kind == "requests":
        value = (resources.get("limits") or {}).get(name)
    if value is None:
        value = node_allocatable(name) if kind == "limits" else "0"
    div = parse_quantity(divisor or "1")
    return str(math.ceil(parse_quantity(value) / div))


# ---------------------------------------------------------------------------------------------
# Pod fields (fieldRef)

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: Mapping[str, Any], path: str, pod_ip: str, host_ip: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path])
    match = _SUBSCRIPT.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")


# ---------------------------------------------------------------------------------------------
# Service links


@dataclass(frozen=True)
class ServiceLink:
    """One Service visible to the pod: name, ClusterIP and TCP/UDP ports."""

    name: str
    cluster_ip: str
    ports: tuple[tuple[str, int, str], ...]  # (port name, port, protocol)


def service_env(services: Iterable[ServiceLink]) -> dict[str, str]:
    """Docker-link style variables (``FOO_SERVICE_HOST``...) of ClusterIP Services."""
    env: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: s.name):
        if not svc.cluster_ip or svc.cluster_ip == "None" or not svc.ports:
            continue
        base = svc.name.upper().replace("-", "_")
        env[f"{base}_SERVICE_HOST"] = svc.cluster_ip
        first_name, first_port, first_proto = svc.ports[0]
        env[f"{base}_SERVICE_PORT"] = str(first_port)
        env[f"{base}_PORT"] = f"{first_proto.lower()}://{svc.cluster_ip}:{first_port}"
        for pname, port, proto in svc.ports:
            if pname:
                env[f"{base}_SERVICE_PORT_{pname.upper().replace('-', '_')}"] = str(port)
            key = f"{base}_PORT_{port}_{proto.upper()}"
            env[key] = f"{proto.lower()}://{svc.cluster_ip}:{port}"
            env[f"{key}_PROTO"] = proto.lower()
            env[f"{key}_PORT"] = str(port)
            env[f"{key}_ADDR"] = svc.cluster_ip
        del first_name
    return env


# ---------------------------------------------------------------------------------------------
# The whole environment


@dataclass(frozen=True)
class EnvSources:
    """Where values come from: ConfigMaps and Secrets (decoded) by name, and the pod."""

    configmaps: Lookup
    secrets: Lookup
    pod: Mapping[str, Any]
    pod_ip: str = ""
    host_ip: str = ""
    services: tuple[ServiceLink, ...] = ()
    node_allocatable: Callable[[str], str] = lambda _name: "0"


def _valid_name(name: str) -> bool:
    return bool(name) and "=" not in name and all(32 <= ord(c) < 127 for c in name)


def _from_ref(kind: str, ref: Mapping[str, Any], lookup: Lookup) -> str | None:
    name, key = ref.get("name", ""), ref.get("key", "")
    optional = bool(ref.get("optional", False))
    data = lookup(name)
    if data is None:
        if optional:
            return None
        raise ConfigError(f'{kind} "{name}" not found')
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {kind} {name}")
    return data[key]


def container_env(container: Mapping[str, Any], src: EnvSources) -> dict[str, str]:
    """The variables a kubelet gives ``container`` (without the image's ENV)."""
    links = (
        service_env(src.services)
        if (src.pod.get("spec") or {}).get("enableServiceLinks", True)
        else service_env(s for s in src.services if s.name == "kubernetes")
    )
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, field in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = source.get(field)
            if ref is None:
                continue
            source_of = src.configmaps if kind == "configmap" else src.secrets
            data = source_of(ref.get("name", ""))
            if data is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind} "{ref.get("name", "")}" not found')
            for key, value in data.items():
                if _valid_name(prefix + key):
                    env[prefix + key] = value

    def lookup(name: str) -> str | None:
        return env.get(name, links.get(name))

    for entry in container.get("env") or []:
        name = entry.get("name", "")
        if "valueFrom" not in entry:
            env[name] = expand(str(entry.get("value", "")), lookup)
            continue
        value_from = entry["valueFrom"] or {}
        found: str | None
        if "configMapKeyRef" in value_from:
            found = _from_ref("configmap", value_from["configMapKeyRef"], src.configmaps)
        elif "secretKeyRef" in value_from:
            found = _from_ref("secret", value_from["secretKeyRef"], src.secrets)
        elif "fieldRef" in value_from:
            path = value_from["fieldRef"].get("fieldPath", "")
            found = field_value(src.pod, path, src.pod_ip, src.host_ip)
        elif "resourceFieldRef" in value_from:
            ref = value_from["resourceFieldRef"]
            found = resource_value(
                container.get("resources") or {},
                ref.get("resource", ""),
                ref.get("divisor"),
                src.node_allocatable,
            )
        else:
            raise ConfigError(f"env {name}: unsupported valueFrom {sorted(value_from)}")
        if found is not None:
            env[name] = found
    for key, value in links.items():
        env.setdefault(key, value)
    return env


def process_env(image_env: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """What the process sees: the image's ENV overridden by the container's variables."""
    out = dict(image_env)
    out.update(env)
    out.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return out


def expand_argv(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``$(VAR)`` in command and args, over the container's variables."""
    return [expand(arg, env.get) for arg in argv]
