"""Every test directory that starts shared state belongs to one xdist lane."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import LANES, MODULE_LANES, TESTS, lane_of, scope_of

ROOT = TESTS.parent


def test_every_integration_and_e2e_directory_has_a_lane() -> None:
    dirs = [TESTS / "e2e", *(p for p in (TESTS / "integration").iterdir() if p.is_dir())]
    missing = [
        str(d.relative_to(TESTS))
        for d in dirs
        if d.name != "__pycache__" and lane_of(d / "test_x.py") is None
    ]
    assert missing == [], f"add these test directories to tests/conftest.py LANES: {missing}"


def test_unit_tests_have_no_lane_and_lanes_name_real_directories() -> None:
    assert lane_of(TESTS / "unit" / "operator" / "test_x.py") is None
    assert lane_of(Path("/elsewhere/test_x.py")) is None
    named = [TESTS / name for name in (*LANES, *MODULE_LANES)]
    assert [str(p) for p in named if not (p.is_dir() or p.is_file())] == []


def test_scopes_keep_shared_state_on_one_worker() -> None:
    e2e = [scope_of(ROOT, f"tests/e2e/test_{n}.py::test_it[a::b]") for n in ("a", "b")]
    assert e2e == ["platform", "platform"]
    canary = {scope_of(ROOT, f"tests/e2e/test_canary_{n}.py::t") for n in ("real", "exposures")}
    assert canary == {"platform-canary"}
    assert scope_of(ROOT, "tests/integration/operator/test_a.py::test_it") == "cluster"
    runtime = {scope_of(ROOT, f"tests/integration/runtime/test_{n}.py::t") for n in "ab"}
    assert len(runtime) == 2
    same_module = {scope_of(ROOT, f"tests/integration/runtime/test_a.py::t{n}") for n in "12"}
    assert len(same_module) == 1
    unit = "tests/unit/runtime/test_a.py::test_it"
    assert scope_of(ROOT, unit) == unit
