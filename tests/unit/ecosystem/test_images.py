"""The Dockerfiles, checked without a container engine (none runs on this machine).

Aspects covered, for each of Dockerfile.runtime and Dockerfile.operator:
- every file it COPYs from the build context exists and is not excluded by .dockerignore;
- it installs only through `uv sync --frozen` of its own extra (what uv.lock pins), with the
  uv version hack/setup.sh uses, and never through pip;
- its ENTRYPOINT is a console script of pyproject.toml whose module defines the function, and
  the package holding it is copied whole;
- the final stage runs as a non-root numeric user, has the OCI labels and a HEALTHCHECK (the
  operator's on the liveness port the chart and the operator use);
- the image name in its build line is the one the spec (runtime) or the chart (operator)
  defaults to.
(hadolint lints both in tests/integration/ecosystem/test_linters.py.)
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from hack.paths import REPO_ROOT
from rag_operator.models.spec import ImageSpec

DOCKERFILES = {
    "runtime": REPO_ROOT / "Dockerfile.runtime",
    "operator": REPO_ROOT / "Dockerfile.operator",
}
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
CHART_VALUES = yaml.safe_load((REPO_ROOT / "charts" / "ragops" / "values.yaml").read_text())
OCI_LABELS = {"title", "description", "source", "licenses", "version", "revision"}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int


def parse(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined; stage counts FROM lines (first = 0)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out: list[Instruction] = []
    stage = -1
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(keyword, args.strip(), stage))
    return out


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def context_copies(instructions: list[Instruction]) -> list[str]:
    """Sources of every COPY that reads the build context (not --from another stage)."""
    out = []
    for ins in instructions:
        if ins.keyword != "COPY" or "--from=" in ins.args:
            continue
        words = [w for w in shlex.split(ins.args) if not w.startswith("--")]
        out.extend(words[:-1])
    return out


def dockerignore() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.fixture(params=sorted(DOCKERFILES))
def image(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_copied_file_exists_and_is_in_the_context(image: str) -> None:
    sources = context_copies(parse(DOCKERFILES[image]))
    assert sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), source
        for pattern in dockerignore():
            assert not fnmatch.fnmatch(source, pattern.removeprefix("**/")), (source, pattern)


def test_installs_exactly_what_the_lock_pins_for_its_extra(image: str) -> None:
    runs = [i.args for i in parse(DOCKERFILES[image]) if i.keyword == "RUN"]
    installs = [r for r in runs if "uv sync" in r]
    assert len(installs) == 2
    for command in installs:
        assert "--frozen" in command
        assert f"--extra {image}" in command
        assert "--all-extras" not in command
    assert not any("pip install" in r for r in runs)
    assert image in PYPROJECT["project"]["optional-dependencies"]


def test_uses_the_uv_version_of_setup(image: str) -> None:
    setup = (REPO_ROOT / "hack" / "setup.sh").read_text()
    version = re.search(r'UV_VERSION="([^"]+)"', setup)
    assert version is not None
    assert f"ghcr.io/astral-sh/uv:{version.group(1)} AS uv" in DOCKERFILES[image].read_text()


def test_entrypoint_is_a_console_script_that_resolves(image: str) -> None:
    entry = next(i for i in final_stage(parse(DOCKERFILES[image])) if i.keyword == "ENTRYPOINT")
    program = json.loads(entry.args)[0]
    target = PYPROJECT["project"]["scripts"][program]
    module, _, function = target.partition(":")
    source = REPO_ROOT / (module.replace(".", "/") + ".py")
    tree = ast.parse(source.read_text())
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert function in defined, f"{target}: no function {function} in {source}"
    package = module.split(".")[0]
    assert package in context_copies(parse(DOCKERFILES[image])), "the package is copied whole"


def test_final_stage_runs_as_a_non_root_user(image: str) -> None:
    users = [i.args for i in final_stage(parse(DOCKERFILES[image])) if i.keyword == "USER"]
    assert users
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0


def test_final_stage_has_oci_labels_and_a_healthcheck(image: str) -> None:
    stage = final_stage(parse(DOCKERFILES[image]))
    labels = " ".join(i.args for i in stage if i.keyword == "LABEL")
    found = set(re.findall(r"org\.opencontainers\.image\.([a-z]+)=", labels))
    assert found >= OCI_LABELS
    assert any(i.keyword == "HEALTHCHECK" and "CMD" in i.args for i in stage)


def test_operator_healthcheck_probes_the_liveness_port() -> None:
    stage = final_stage(parse(DOCKERFILES["operator"]))
    check = next(i.args for i in stage if i.keyword == "HEALTHCHECK")
    port = CHART_VALUES["operator"]["livenessPort"]
    assert f"'RAGOPS_LIVENESS_PORT', '{port}'" in check
    assert "/healthz" in check
    from rag_operator.models.config import OperatorConfig

    assert OperatorConfig().liveness_port == port


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("runtime", ImageSpec().repository),
        ("operator", CHART_VALUES["image"]["repository"]),
    ],
)
def test_image_name_is_the_default_of_its_users(image: str, repository: str) -> None:
    text = DOCKERFILES[image].read_text()
    assert f"-t {repository}:" in text
    title = re.search(r'org\.opencontainers\.image\.title="([^"]+)"', text)
    assert title is not None
    assert repository.endswith("/" + title.group(1))
