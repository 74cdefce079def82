"""Start one container: enter its pod's network, build its root, drop to its user, exec.

Run by the node agent as ``python -I -S launch.py SPEC.json`` (standard library only, so it
starts in a few tens of milliseconds). In order it:

1. joins the container's cgroup (the agent kills the whole group when the container ends);
2. joins the pod's network namespace and makes private mount, UTS and IPC namespaces;
3. mounts an overlay whose lower layer is the host's ``/`` and whose upper layer is the
   container's own (so the "image" is this machine, and writes stay in the container), with
   ``/proc``, ``/sys``, a small ``/dev`` (null, zero, random, tty, ``shm``, the termination
   log), fresh ``/tmp``, ``/run`` and ``/var/tmp``, and the cluster's state directory hidden;
4. writes ``/etc/hosts``, ``/etc/resolv.conf``, ``/etc/hostname`` and the image's users, makes
   the directories the program reads traversable, creates the mount points, turns the root
   read-only when ``readOnlyRootFilesystem`` asks, and bind-mounts the volumes;
5. sets the hostname, chroots, changes to the working directory, sets groups, gid and uid,
   and replaces itself with the program (``execvpe`` over the container's ``PATH``).

A failure before the exec is written to the spec's ``error_file`` and the process exits 128,
which the agent reports as ``StartError`` with that message.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
START_ERROR = 128
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source} on {target}",
    )


def bind(source: str, target: str, readonly: bool = False, recursive: bool = True) -> None:
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0), None)
    if readonly:
        mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)


def _inside(root: str, path: str) -> str:
    """``path`` as seen inside ``root``: symlinks on the way are followed within ``root`` (an
    absolute link like ``/var/run -> /run`` must not lead out to the host)."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root + "/" + "/".join([*resolved, part])
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise OSError(f"too many symbolic links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return root + "/" + "/".join(resolved)


def _mkdirs(path: str, mode: int = 0o755) -> None:
    os.makedirs(path, mode=mode, exist_ok=True)


def _make_dev(root: str, files: list[dict[str, str]]) -> None:
    dev = _inside(root, "/dev")
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=65536k")
    for name in DEVICES:
        node = f"{dev}/{name}"
        Path(node).touch()
        bind(f"/dev/{name}", node, recursive=False)
    _mkdirs(f"{dev}/pts")
    if os.path.isdir("/dev/pts"):
        bind("/dev/pts", f"{dev}/pts")
    os.symlink("pts/ptmx", f"{dev}/ptmx")
    _mkdirs(f"{dev}/shm")
    mount("shm", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=262144k")
    os.symlink("/proc/self/fd", f"{dev}/fd")
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{i}", f"{dev}/{name}")
    for entry in files:
        if entry["target"].startswith("/dev/"):
            target = _inside(root, entry["target"])
            _mkdirs(os.path.dirname(target))
            Path(target).touch()
            bind(entry["source"], target, recursive=False)


def _traverse(root: str, path: str) -> None:
    """Give every ancestor of ``path`` (inside the root) search permission for others."""
    current = Path(path)
    for parent in [current, *current.parents]:
        inside = _inside(root, str(parent))
        try:
            mode = os.stat(inside).st_mode
        except OSError:
            continue
        if mode & 0o001 == 0:
            os.chmod(inside, (mode & 0o7777) | 0o001)


def _covered(target: str, mounts: list[dict[str, Any]]) -> bool:
    return any(m["target"].rstrip("/") == target.rstrip("/") for m in mounts)


def build_root(spec: dict[str, Any]) -> str:
    root: dict[str, Any] = spec["root"]
    merged = str(root["merged"])
    for d in (root["upper"], root["work"], merged):
        _mkdirs(d, 0o755)
    mount(
        "overlay",
        merged,
        "overlay",
        0,
        f"lowerdir=/,upperdir={root['upper']},workdir={root['work']}",
    )
    bind("/proc", _inside(merged, "/proc"))
    bind("/sys", _inside(merged, "/sys"))
    _make_dev(merged, spec.get("files", []))
    mounts: list[dict[str, Any]] = spec.get("mounts", [])
    readonly_root = bool(root.get("readonly"))
    fresh: list[str] = []
    for target, source in spec.get("fresh", {}).items():
        if not _covered(target, mounts):
            inside = _inside(merged, target)
            _mkdirs(inside)
            bind(source, inside, recursive=False)
            fresh.append(inside)
    for path in spec.get("keep", []):
        # The program directories a fresh directory would hide (a checkout under /tmp).
        inside = _inside(merged, path)
        _mkdirs(inside)
        bind(path, inside, readonly=True)
    for path in spec.get("hide", []):
        inside = _inside(merged, path)
        if os.path.isdir(inside):
            mount("tmpfs", inside, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=755")
    for entry in spec.get("write", []):
        target = _inside(merged, entry["path"])
        _mkdirs(os.path.dirname(target))
        with open(target, "w") as fh:
            fh.write(entry["content"])
        os.chmod(target, int(entry.get("mode", 0o644)))
    for entry in spec.get("files", []):
        if not entry["target"].startswith("/dev/"):
            target = _inside(merged, entry["target"])
            _mkdirs(os.path.dirname(target))
            Path(target).touch()
            bind(entry["source"], target, recursive=False)
    for path in spec.get("traverse", []):
        _traverse(merged, path)
    for m in mounts:
        target = _inside(merged, m["target"])
        if m.get("file"):
            _mkdirs(os.path.dirname(target))
            if not os.path.exists(target):
                Path(target).touch()
        else:
            _mkdirs(target)
    _mkdirs(_inside(merged, spec.get("cwd", "/")))
    if readonly_root:
        # The fresh directories are part of the image's root: read-only with it (mount points
        # inside them were made above).
        for inside in [merged, *fresh]:
            mount("none", inside, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
    for m in mounts:
        bind(m["source"], _inside(merged, m["target"]), readonly=bool(m.get("readonly")))
    return merged


def run(spec: dict[str, Any]) -> None:
    cgroup = spec.get("cgroup")
    if cgroup:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as fh:
            fh.write(str(os.getpid()))
    fd = os.open(spec["netns"], os.O_RDONLY)
    _check(_libc.setns(fd, CLONE_NEWNET), f"setns {spec['netns']}")
    os.close(fd)
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC), "unshare")
    mount("none", "/", None, MS_REC | MS_PRIVATE, None)
    merged = build_root(spec)
    hostname = spec.get("hostname", "").encode()
    if hostname:
        _check(_libc.sethostname(hostname, len(hostname)), "sethostname")
    os.chroot(merged)
    os.chdir(spec.get("cwd", "/"))
    uid, gid = int(spec.get("uid", 0)), int(spec.get("gid", 0))
    os.setgroups([int(g) for g in spec.get("groups", [])])
    os.setgid(gid)
    os.setuid(uid)
    argv: list[str] = spec["argv"]
    env: dict[str, str] = spec["env"]
    try:
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        raise RuntimeError(f'exec: "{argv[0]}": executable file not found in $PATH') from None
    except PermissionError:
        raise RuntimeError(f'exec: "{argv[0]}": permission denied') from None


def main() -> None:
    spec_path = sys.argv[1]
    with open(spec_path) as fh:
        spec = json.load(fh)
    try:
        run(spec)
    except Exception as exc:  # the program never started: tell the agent why
        message = str(exc) or type(exc).__name__
        try:
            with open(spec["error_file"], "w") as fh:
                fh.write(message)
        finally:
            print(f"node agent: container did not start: {message}", file=sys.stderr)
            os._exit(START_ERROR)


if __name__ == "__main__":
    main()
