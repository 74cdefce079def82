"""The GitHub Actions workflows.

Aspects covered: pushes and pull requests run `.ci/run` (= `make test`, what CI runs); a
version tag builds and pushes both images with docker/build-push-action to the names the
spec and the chart default to, from the Dockerfiles of this repository, with write access to
packages only there. (actionlint lints them in tests/integration/ecosystem/test_linters.py.)
"""

from __future__ import annotations

from typing import Any

import yaml

from hack.paths import REPO_ROOT
from rag_operator.models.spec import ImageSpec

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
CHART_IMAGE = yaml.safe_load((REPO_ROOT / "charts" / "ragops" / "values.yaml").read_text())[
    "image"
]["repository"]


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_tests_run_on_push_and_pull_request() -> None:
    workflow = load("test.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    assert any(step.get("run") == "bash .ci/run" for step in steps(workflow))
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
    assert workflow["permissions"] == {"contents": "read"}


def test_tags_build_and_push_both_images() -> None:
    workflow = load("release.yml")
    assert workflow["on"]["push"]["tags"] == ["v*.*.*"]
    job = workflow["jobs"]["images"]
    matrix = {e["image"]: e["dockerfile"] for e in job["strategy"]["matrix"]["include"]}
    assert matrix == {
        ImageSpec().repository: "Dockerfile.runtime",
        CHART_IMAGE: "Dockerfile.operator",
    }
    for dockerfile in matrix.values():
        assert (REPO_ROOT / dockerfile).is_file()
    build = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push"))
    assert build["with"]["push"] is True
    assert build["with"]["file"] == "${{ matrix.dockerfile }}"
    assert job["permissions"]["packages"] == "write"
    assert workflow["permissions"] == {"contents": "read"}
