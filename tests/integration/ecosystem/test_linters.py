"""The delivery files checked by their own tools.

Aspects covered: hadolint finds nothing in either Dockerfile and does flag a bad one;
actionlint (with shellcheck for `run:` scripts) finds nothing in .github/workflows and does
flag a broken workflow; compose-go's validator (the Compose Specification's loader) accepts
docker-compose.yml as the five-service stack and refuses a file that breaks the schema;
shellcheck finds nothing in the repository's shell scripts. No container engine runs here, so
the images are not built and the stack is not started.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from hack.devtools import go_tool, run, system_tool, venv_tool
from hack.paths import REPO_ROOT

pytestmark = pytest.mark.integration

DOCKERFILES = [REPO_ROOT / "Dockerfile.runtime", REPO_ROOT / "Dockerfile.operator"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing_in_the_dockerfiles(dockerfile: Path) -> None:
    proc = run(venv_tool("hadolint"), [dockerfile])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python\n")
    proc = run(venv_tool("hadolint"), [bad])
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout  # the latest tag
    assert "DL3013" in proc.stdout  # an unpinned pip install


def actionlint(root: Path) -> tuple[int, str]:
    workflows = sorted((root / ".github" / "workflows").glob("*.yml"))
    assert workflows
    args = ["-color=false", f"-shellcheck={system_tool('shellcheck')}", *workflows]
    proc = run(go_tool("actionlint"), args, cwd=root)
    return proc.returncode, proc.stdout + proc.stderr


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    code, out = actionlint(REPO_ROOT)
    assert code == 0, out


def test_actionlint_flags_a_broken_workflow(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / ".github", tmp_path / ".github")
    test = tmp_path / ".github" / "workflows" / "test.yml"
    steps = (
        "      - run: echo ${{ github.no_such_thing }}\n"
        '      - run: if [ $x = 1 ]; then echo "$y"; fi\n'
    )
    test.write_text(test.read_text() + steps)
    code, out = actionlint(tmp_path)
    assert code == 1
    assert "no_such_thing" in out
    assert "shellcheck" in out


def test_compose_file_is_valid_and_complete() -> None:
    proc = run(go_tool("compose-spec"), ["--format=json", "docker-compose.yml"])
    assert proc.returncode == 0, proc.stderr
    model = yaml.safe_load(proc.stdout)
    assert set(model["services"]) == {"api", "worker", "postgres", "redis", "neo4j"}
    assert model["services"]["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_validator_refuses_a_broken_file(tmp_path: Path) -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    compose["services"]["api"]["portz"] = compose["services"]["api"].pop("ports")
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(compose))
    proc = run(go_tool("compose-spec"), ["docker-compose.yml"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "portz" in proc.stderr


def shell_scripts() -> list[Path]:
    scripts = sorted(p for p in REPO_ROOT.rglob("*.sh") if ".venv" not in p.parts)
    return [
        *scripts,
        REPO_ROOT / ".ci" / "run",
        REPO_ROOT / "hack" / "faults" / "bin" / "rag-runtime",
    ]


def test_shellcheck_finds_nothing_in_the_shell_scripts() -> None:
    scripts = shell_scripts()
    assert len(scripts) >= 4
    proc = run(system_tool("shellcheck"), ["-x", "-P", "SCRIPTDIR", *scripts])
    assert proc.returncode == 0, proc.stdout + proc.stderr
