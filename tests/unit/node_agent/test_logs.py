"""Finding a real pod's output: by name, namespace and container, current or previous run.

Aspects covered:
- the latest run by default, the one before it with ``previous``;
- a pod with several containers needs the container named; an unknown pod, container or a
  container that never restarted is an error saying so;
- a name used in two namespaces needs the namespace.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hack.node_agent.logs import LogsError, read_logs


def _write(root: Path, ns: str, pod: str, container: str, runs: list[str]) -> None:
    d = root / f"{ns}_{pod}_uid-{ns}" / "logs" / container
    d.mkdir(parents=True)
    for i, text in enumerate(runs):
        (d / f"{i}.log").write_text(text)


def test_latest_and_previous_runs(tmp_path: Path) -> None:
    _write(tmp_path, "a", "web", "main", ["first\n", "second\n"])
    assert read_logs(tmp_path, "web") == "second\n"
    assert read_logs(tmp_path, "web", previous=True) == "first\n"


def test_several_containers_need_a_name(tmp_path: Path) -> None:
    _write(tmp_path, "a", "web", "main", ["m\n"])
    _write(tmp_path, "a", "web", "side", ["s\n"])
    with pytest.raises(LogsError, match=r"has containers \['main', 'side'\]: name one"):
        read_logs(tmp_path, "web")
    assert read_logs(tmp_path, "web", container="side") == "s\n"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "nope"}, "no real pod named 'nope'"),
        ({"name": "web", "container": "x"}, "has no container 'x'"),
        ({"name": "web", "previous": True}, "has not restarted"),
    ],
)
def test_errors_say_what_is_missing(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    _write(tmp_path, "a", "web", "main", ["only\n"])
    with pytest.raises(LogsError, match=message):
        read_logs(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_same_name_in_two_namespaces_needs_one(tmp_path: Path) -> None:
    _write(tmp_path, "a", "web", "main", ["in a\n"])
    _write(tmp_path, "b", "web", "main", ["in b\n"])
    with pytest.raises(LogsError, match="several namespaces"):
        read_logs(tmp_path, "web")
    assert read_logs(tmp_path, "web", namespace="b") == "in b\n"
