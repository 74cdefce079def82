"""A pod's volumes as host directories, and the files of ConfigMap/Secret/projected volumes.

Planning is pure: :func:`plan_files` turns a volume and the objects it names into the files a
kubelet would write. Materialising writes them the kubelet way (an atomic ``..data`` symlink
swap, so a reader never sees half an update) and gives the pod's ``fsGroup`` group ownership.

Where each volume lives on the host:
- ``emptyDir``: ``<pod dir>/volumes/<name>`` (0777, a tmpfs when ``medium: Memory``), removed
  with the pod;
- ``configMap``, ``secret``, ``projected``, ``downwardAPI``: ``<pod dir>/volumes/<name>``;
- ``persistentVolumeClaim`` (and generic ``ephemeral`` volumes): ``<state>/claims/<claim uid>``,
  which outlives every pod that mounts it and goes when the claim goes.
Other kinds (hostPath, nfs, csi, ...) are refused with a message naming the volume.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hack.node_agent.podenv import ConfigError, field_value, resource_value

DEFAULT_MODE = 0o644
FILE_VOLUMES = ("configMap", "secret", "projected", "downwardAPI")
DIR_VOLUMES = ("emptyDir",)
CLAIM_VOLUMES = ("persistentVolumeClaim", "ephemeral")


@dataclass(frozen=True)
class FileSpec:
    path: str
    data: bytes
    mode: int


def volume_kind(volume: Mapping[str, Any]) -> str:
    for kind in (*FILE_VOLUMES, *DIR_VOLUMES, *CLAIM_VOLUMES):
        if kind in volume:
            return kind
    other = sorted(k for k in volume if k != "name")
    raise ConfigError(
        f"volume {volume.get('name')!r}: type {', '.join(other) or '(none)'} is not supported "
        "by the node agent (emptyDir, configMap, secret, projected, downwardAPI, "
        "persistentVolumeClaim and ephemeral are)"
    )


def claim_name(pod: Mapping[str, Any], volume: Mapping[str, Any]) -> str:
    if "persistentVolumeClaim" in volume:
        return str(volume["persistentVolumeClaim"].get("claimName", ""))
    return f"{pod['metadata']['name']}-{volume['name']}"


def decode_configmap(obj: Mapping[str, Any]) -> dict[str, bytes]:
    out = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out


def decode_secret(obj: Mapping[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


@dataclass(frozen=True)
class FileSources:
    """Objects that file volumes read: decoded ConfigMaps and Secrets, the pod, tokens."""

    configmaps: Callable[[str], Mapping[str, bytes] | None]
    secrets: Callable[[str], Mapping[str, bytes] | None]
    pod: Mapping[str, Any]
    pod_ip: str = ""
    host_ip: str = ""
    token: Callable[[str, int], str] = lambda _aud, _exp: ""


def _checked_path(path: str, where: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or any(p.startswith("..") for p in parts):
        raise ConfigError(f"{where}: invalid path {path!r}")
    return path


def _keyed(
    kind: str,
    source: Mapping[str, Any],
    data: Mapping[str, bytes] | None,
    default_mode: int,
    where: str,
) -> list[FileSpec]:
    name, optional = source.get("name", ""), bool(source.get("optional", False))
    if data is None:
        if optional:
            return []
        raise ConfigError(f'{where}: {kind} "{name}" not found')
    items = source.get("items")
    if not items:
        return [FileSpec(_checked_path(k, where), v, default_mode) for k, v in sorted(data.items())]
    files = []
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise ConfigError(f'{where}: configuration key "{key}" not found in {kind} "{name}"')
        mode = int(item.get("mode", default_mode))
        files.append(FileSpec(_checked_path(item.get("path", key), where), data[key], mode))
    return files


def _downward(
    items: Sequence[Mapping[str, Any]], src: FileSources, default_mode: int, where: str
) -> list[FileSpec]:
    files = []
    for item in items:
        if "fieldRef" in item:
            value = field_value(
                src.pod, item["fieldRef"].get("fieldPath", ""), src.pod_ip, src.host_ip
            )
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"]
            containers = {c["name"]: c for c in (src.pod.get("spec") or {}).get("containers", [])}
            container = containers.get(ref.get("containerName", ""), {})
            value = resource_value(
                container.get("resources") or {},
                ref.get("resource", ""),
                ref.get("divisor"),
                lambda _n: "0",
            )
        else:
            raise ConfigError(f"{where}: downwardAPI item needs fieldRef or resourceFieldRef")
        mode = int(item.get("mode", default_mode))
        files.append(FileSpec(_checked_path(item.get("path", ""), where), value.encode(), mode))
    return files


def plan_files(volume: Mapping[str, Any], src: FileSources) -> list[FileSpec]:
    """The files of a configMap, secret, projected or downwardAPI volume."""
    where = f"volume {volume.get('name')!r}"
    if "configMap" in volume:
        cm = volume["configMap"]
        mode = int(cm.get("defaultMode", DEFAULT_MODE))
        return _keyed("configmap", cm, src.configmaps(cm.get("name", "")), mode, where)
    if "secret" in volume:
        sec = volume["secret"]
        ref = {**sec, "name": sec.get("secretName", "")}
        mode = int(sec.get("defaultMode", DEFAULT_MODE))
        return _keyed("secret", ref, src.secrets(ref["name"]), mode, where)
    if "downwardAPI" in volume:
        dapi = volume["downwardAPI"]
        mode = int(dapi.get("defaultMode", DEFAULT_MODE))
        return _downward(dapi.get("items") or [], src, mode, where)
    projected = volume.get("projected") or {}
    mode = int(projected.get("defaultMode", DEFAULT_MODE))
    files: list[FileSpec] = []
    for source in projected.get("sources") or []:
        if "configMap" in source:
            cm = source["configMap"]
            files += _keyed("configmap", cm, src.configmaps(cm.get("name", "")), mode, where)
        elif "secret" in source:
            sec = source["secret"]
            files += _keyed("secret", sec, src.secrets(sec.get("name", "")), mode, where)
        elif "downwardAPI" in source:
            files += _downward(source["downwardAPI"].get("items") or [], src, mode, where)
        elif "serviceAccountToken" in source:
            tok = source["serviceAccountToken"]
            token = src.token(tok.get("audience", ""), int(tok.get("expirationSeconds", 3600)))
            files.append(
                FileSpec(_checked_path(tok.get("path", "token"), where), token.encode(), mode)
            )
        else:
            raise ConfigError(f"{where}: unsupported projected source {sorted(source)}")
    return files


# ---------------------------------------------------------------------------------------------
# Writing volumes on the host


def write_atomic(target: Path, files: Sequence[FileSpec], fs_group: int | None) -> bool:
    """Publish ``files`` under ``target`` through a ``..data`` symlink; True if anything changed.

    Layout as the kubelet's: ``..<stamp>/`` holds the files, ``..data`` points at it and each
    top-level entry is a symlink through ``..data``, so one rename swaps the whole set.
    """
    target.mkdir(parents=True, exist_ok=True)
    current = target / "..data"
    if current.is_symlink() and _same_content(current, files):
        return False
    stamp = target / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    stamp.mkdir()
    for spec in files:
        path = stamp / spec.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(spec.data)
        mode = spec.mode
        if fs_group is not None:
            os.chown(path, -1, fs_group)
            mode |= 0o440
        path.chmod(mode & 0o7777)
    os.chmod(stamp, 0o755)
    tmp_link = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    tmp_link.symlink_to(stamp.name)
    old = os.readlink(current) if current.is_symlink() else None
    os.replace(tmp_link, current)
    tops = {spec.path.split("/")[0] for spec in files}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            link.symlink_to(f"..data/{top}")
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in tops and entry.is_symlink():
            entry.unlink()
    if old is not None and old != stamp.name:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


def _same_content(current: Path, files: Sequence[FileSpec]) -> bool:
    root = current.resolve()
    try:
        existing = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        if existing != {spec.path for spec in files}:
            return False
        return all((root / spec.path).read_bytes() == spec.data for spec in files)
    except OSError:
        return False


def make_dir_volume(path: Path, fs_group: int | None, mode: int = 0o777) -> None:
    """An emptyDir (or a claim's directory) that the pod's users can write."""
    path.mkdir(parents=True, exist_ok=True)
    if fs_group is not None:
        os.chown(path, -1, fs_group)
        mode |= stat.S_ISGID
    path.chmod(mode)


def apply_fs_group(path: Path, fs_group: int | None) -> None:
    """``fsGroupChangePolicy: OnRootMismatch``: regroup the tree when its root differs."""
    if fs_group is None:
        return
    st = path.stat()
    if st.st_gid == fs_group and st.st_mode & stat.S_ISGID:
        return
    for root, dirs, names in os.walk(path):
        for name in [*dirs, *names]:
            entry = Path(root) / name
            with contextlib.suppress(OSError):
                os.lchown(entry, -1, fs_group)
                if not entry.is_symlink():
                    mode = entry.stat().st_mode
                    extra = stat.S_IRGRP | stat.S_IWGRP
                    if entry.is_dir():
                        extra |= stat.S_IXGRP | stat.S_ISGID
                    entry.chmod(stat.S_IMODE(mode) | extra)
    os.chown(path, -1, fs_group)
    path.chmod(stat.S_IMODE(st.st_mode) | stat.S_IRWXG | stat.S_ISGID)
