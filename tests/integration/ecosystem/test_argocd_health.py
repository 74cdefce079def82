"""The Argo CD health checks, run the way Argo CD runs them (hack/argocd-health on gopher-lua).

Aspects covered:
- every case of every health_test.yaml gives exactly the expected status and message, both in
  argocd-cm's default sandbox and with open libraries;
- the harness can fail: a wrong expectation, a testdata file no test uses, an object of another
  kind in a check's testdata;
- Argo CD's semantics hold in the harness: no string or math library in the sandbox (os only
  with time and date), JSON numbers as floats, a one-second limit that stops a looping
  script, an unknown status reported as Unknown, a result that is not a table refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from hack.devtools import go_tool, run
from hack.paths import REPO_ROOT

pytestmark = pytest.mark.integration

CUSTOMIZATIONS = REPO_ROOT / "examples" / "argocd" / "resource_customizations"
RAGSYSTEM = CUSTOMIZATIONS / "ragops.io" / "RagSystem"


@pytest.fixture(scope="module")
def harness() -> Path:
    return go_tool("argocd-health")


def case_count(root: Path) -> int:
    return sum(
        len(yaml.safe_load(path.read_text())["tests"]) for path in root.glob("*/*/health_test.yaml")
    )


def test_every_health_test_case_passes_in_both_sandboxes(harness: Path) -> None:
    proc = run(harness, ["test", CUSTOMIZATIONS])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = case_count(CUSTOMIZATIONS)
    assert cases >= 20
    assert f"argocd-health: {2 * cases} cases passed, 0 failed" in proc.stdout
    assert proc.stdout.count("[restricted]") == cases


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "resource_customizations"
    shutil.copytree(CUSTOMIZATIONS, root)
    return root


def test_a_wrong_expected_message_fails(harness: Path, tree: Path) -> None:
    tests_file = tree / "ragops.io" / "RagSystem" / "health_test.yaml"
    tests = yaml.safe_load(tests_file.read_text())
    tests["tests"][0]["healthStatus"]["message"] += " (edited)"
    tests_file.write_text(yaml.safe_dump(tests))
    proc = run(harness, ["test", tree])
    assert proc.returncode == 1
    assert "FAIL ragops.io/RagSystem/testdata/no-status.yaml [restricted]" in proc.stdout
    assert "2 failed" in proc.stdout


def test_testdata_in_no_test_is_refused(harness: Path, tree: Path) -> None:
    extra = tree / "ragops.io" / "RagSystem" / "testdata" / "forgotten.yaml"
    shutil.copy(tree / "ragops.io" / "RagSystem" / "testdata" / "healthy.yaml", extra)
    proc = run(harness, ["test", tree])
    assert proc.returncode == 2
    assert "testdata/forgotten.yaml is in no test" in proc.stderr


def test_an_object_of_another_kind_is_refused(harness: Path, tree: Path) -> None:
    data = tree / "ragops.io" / "RagSystem" / "testdata" / "healthy.yaml"
    data.write_text(data.read_text().replace("kind: RagSystem", "kind: RagBackup"))
    proc = run(harness, ["test", tree])
    assert proc.returncode == 2
    assert "is not ragops.io/RagSystem" in proc.stderr


def evaluate(
    harness: Path, tmp_path: Path, script: str, *flags: str, obj: str | None = None
) -> tuple[int, str, str]:
    script_path = tmp_path / "health.lua"
    script_path.write_text(script)
    obj_path = tmp_path / "object.yaml"
    obj_path.write_text(
        obj or "apiVersion: ragops.io/v1alpha1\nkind: RagSystem\nmetadata: {generation: 3}\n"
    )
    proc = run(harness, ["eval", *flags, script_path, obj_path])
    return proc.returncode, proc.stdout.strip(), proc.stderr.strip()


def test_sandbox_has_no_string_library_unless_open_libs(harness: Path, tmp_path: Path) -> None:
    script = 'return {status = string.format("%s", "Healthy")}'
    code, _, err = evaluate(harness, tmp_path, script)
    assert code == 1
    assert "format" in err
    code, out, _ = evaluate(harness, tmp_path, script, "-open-libs")
    assert code == 0
    assert json.loads(out) == {"status": "Healthy"}


def test_sandbox_libraries_are_those_argocd_opens(harness: Path, tmp_path: Path) -> None:
    script = (
        'local os2 = require("os")\n'
        "return {status = 'Healthy', message = type(string) .. ' ' .. type(math) .. ' ' .. "
        "type(io) .. ' ' .. type(os.exit) .. ' ' .. type(os.time()) .. ' ' .. type(os2.date) "
        ".. ' ' .. type(table.concat) .. ' ' .. type(ipairs)}"
    )
    code, out, err = evaluate(harness, tmp_path, script)
    assert code == 0, err
    assert json.loads(out)["message"] == "nil nil nil nil number function function function"


def test_numbers_arrive_as_floats(harness: Path, tmp_path: Path) -> None:
    obj = (
        "apiVersion: ragops.io/v1alpha1\nkind: RagSystem\nmetadata: {generation: 3}\n"
        "status: {observedGeneration: 3, weight: 12.5, size: 1503238553}\n"
    )
    script = (
        "local s = obj.status\n"
        "return {status = 'Healthy', message = tostring(s.observedGeneration == 3.0) .. ' ' .. "
        "tostring(s.weight) .. ' ' .. tostring(s.size) .. ' ' .. tostring(s.weight / 2)}"
    )
    code, out, err = evaluate(harness, tmp_path, script, obj=obj)
    assert code == 0, err
    assert json.loads(out)["message"] == "true 12.5 1503238553 6.25"


def test_a_looping_script_is_stopped_by_the_time_limit(harness: Path, tmp_path: Path) -> None:
    code, _, err = evaluate(harness, tmp_path, "while true do end")
    assert code == 1
    assert "context deadline exceeded" in err


def test_an_unknown_status_becomes_unknown(harness: Path, tmp_path: Path) -> None:
    code, out, _ = evaluate(harness, tmp_path, "return {status = 'Fine', message = 'x'}")
    assert code == 0
    assert json.loads(out) == {
        "status": "Unknown",
        "message": "Lua returned an invalid health status",
    }


def test_a_result_that_is_not_a_table_is_an_error(harness: Path, tmp_path: Path) -> None:
    code, _, err = evaluate(harness, tmp_path, "return 'Healthy'")
    assert code == 1
    assert "expect table output from Lua script, not string" in err
