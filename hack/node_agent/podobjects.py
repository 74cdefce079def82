"""What a pod's containers read from the API (ConfigMaps, Secrets) and who they run as."""

from __future__ import annotations

import grp
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hack.node_agent.images import ImageProfile
from hack.node_agent.kubeapi import Api
from hack.node_agent.podvolumes import (
    decode_configmap,
    decode_secret,
)


def pod_path(pod: Mapping[str, Any]) -> str:
    meta = pod["metadata"]
    return f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"


def pod_ref(pod: Mapping[str, Any]) -> str:
    meta = pod["metadata"]
    return f"{meta['namespace']}/{meta['name']}"


def referenced_objects(pod: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Names of the ConfigMaps and Secrets the pod's env and volumes read."""
    cms: set[str] = set()
    secrets: set[str] = set()
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for src in c.get("envFrom") or []:
            if "configMapRef" in src:
                cms.add(src["configMapRef"].get("name", ""))
            if "secretRef" in src:
                secrets.add(src["secretRef"].get("name", ""))
        for e in c.get("env") or []:
            vf = e.get("valueFrom") or {}
            if "configMapKeyRef" in vf:
                cms.add(vf["configMapKeyRef"].get("name", ""))
            if "secretKeyRef" in vf:
                secrets.add(vf["secretKeyRef"].get("name", ""))
    for v in spec.get("volumes") or []:
        if "configMap" in v:
            cms.add(v["configMap"].get("name", ""))
        if "secret" in v:
            secrets.add(v["secret"].get("secretName", ""))
        for s in (v.get("projected") or {}).get("sources") or []:
            if "configMap" in s:
                cms.add(s["configMap"].get("name", ""))
            if "secret" in s:
                secrets.add(s["secret"].get("name", ""))
    return cms, secrets


@dataclass
class Objects:
    """ConfigMaps and Secrets fetched for one container start (None: does not exist)."""

    configmaps: dict[str, dict[str, Any] | None]
    secrets: dict[str, dict[str, Any] | None]

    def cm_text(self, name: str) -> dict[str, str] | None:
        obj = self.configmaps.get(name)
        if obj is None:
            return None
        return {k: v.decode(errors="replace") for k, v in decode_configmap(obj).items()}

    def secret_text(self, name: str) -> dict[str, str] | None:
        obj = self.secrets.get(name)
        if obj is None:
            return None
        return {k: v.decode(errors="replace") for k, v in decode_secret(obj).items()}

    def cm_bytes(self, name: str) -> dict[str, bytes] | None:
        obj = self.configmaps.get(name)
        return None if obj is None else decode_configmap(obj)

    def secret_bytes(self, name: str) -> dict[str, bytes] | None:
        obj = self.secrets.get(name)
        return None if obj is None else decode_secret(obj)


async def fetch_objects(api: Api, pod: Mapping[str, Any]) -> Objects:
    ns = pod["metadata"]["namespace"]
    cms, secrets = referenced_objects(pod)
    out = Objects({}, {})
    for name in sorted(n for n in cms if n):
        out.configmaps[name] = await api.get(f"/api/v1/namespaces/{ns}/configmaps/{name}")
    for name in sorted(n for n in secrets if n):
        out.secrets[name] = await api.get(f"/api/v1/namespaces/{ns}/secrets/{name}")
    return out


# ---------------------------------------------------------------------------------------------
# Users: the image's /etc/passwd on top of the host's


def passwd_text(profile: ImageProfile, uid: int, gid: int) -> tuple[str, str]:
    """``/etc/passwd`` and ``/etc/group`` of the container: the host's plus the image's users
    (and an entry for an arbitrary ``runAsUser``, as images run by OpenShift get)."""
    users = {
        p.pw_uid: f"{p.pw_name}:x:{p.pw_uid}:{p.pw_gid}:{p.pw_gecos}:{p.pw_dir}:{p.pw_shell}"
        for p in pwd.getpwall()
    }
    groups = {g.gr_gid: f"{g.gr_name}:x:{g.gr_gid}:{','.join(g.gr_mem)}" for g in grp.getgrall()}
    names = {line.split(":")[0]: u for u, line in users.items()}
    gnames = {line.split(":")[0]: g for g, line in groups.items()}
    for user in profile.users:
        for name in [n for n, u in names.items() if n == user.name and u != user.uid]:
            users.pop(names.pop(name), None)
        users[user.uid] = f"{user.name}:x:{user.uid}:{user.uid}::{user.home}:/bin/sh"
        for name in [n for n, g in gnames.items() if n == user.name and g != user.uid]:
            groups.pop(gnames.pop(name), None)
        groups[user.uid] = f"{user.name}:x:{user.uid}:"
    users.setdefault(uid, f"user{uid}:x:{uid}:{gid}::/:/bin/sh")
    groups.setdefault(gid, f"group{gid}:x:{gid}:")
    return (
        "\n".join(users[k] for k in sorted(users)) + "\n",
        "\n".join(groups[k] for k in sorted(groups)) + "\n",
    )
