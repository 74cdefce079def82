"""Small rules of running a container: back-off, exit codes, the image's users.

Aspects covered:
- restarts: the first at once, then 10 s doubling up to the 5 min cap;
- an exit by signal is reported as 128 + the signal (137 for SIGKILL);
- /etc/passwd and /etc/group inside the container hold the host's entries, the image's
  users (replacing a host user of the same name) and an entry for an arbitrary runAsUser.
"""

from __future__ import annotations

import signal

import pytest

from hack.node_agent.container import backoff_s, exit_code
from hack.node_agent.images import ImageProfile, User
from hack.node_agent.podobjects import passwd_text, referenced_objects


@pytest.mark.parametrize(
    ("restarts", "delay"),
    [(0, 0.0), (1, 10.0), (2, 20.0), (3, 40.0), (5, 160.0), (6, 300.0), (30, 300.0)],
)
def test_back_off_doubles_to_the_cap(restarts: int, delay: float) -> None:
    assert backoff_s(restarts, 10.0, 300.0) == delay


def test_exit_by_signal_is_128_plus_the_signal() -> None:
    assert exit_code(-signal.SIGKILL) == 137
    assert exit_code(-signal.SIGTERM) == 143
    assert exit_code(3) == 3


def test_passwd_holds_the_images_users_and_the_run_as_user() -> None:
    profile = ImageProfile(name="x", users=(User(999, "postgres", "/var/lib/postgresql"),))
    passwd, group = passwd_text(profile, uid=4242, gid=4242)
    lines = passwd.splitlines()
    assert "postgres:x:999:999::/var/lib/postgresql:/bin/sh" in lines
    assert sum(1 for ln in lines if ln.startswith("postgres:")) == 1
    assert any(ln.startswith("root:x:0:0:") for ln in lines)
    assert "user4242:x:4242:4242::/:/bin/sh" in lines
    assert "postgres:x:999:" in group.splitlines()


def test_referenced_objects_cover_env_and_volumes() -> None:
    pod = {
        "spec": {
            "initContainers": [{"envFrom": [{"secretRef": {"name": "s1"}}]}],
            "containers": [
                {
                    "env": [
                        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c1", "key": "k"}}}
                    ]
                }
            ],
            "volumes": [
                {
                    "name": "v",
                    "projected": {
                        "sources": [{"secret": {"name": "s2"}}, {"configMap": {"name": "c2"}}]
                    },
                },
                {"name": "w", "secret": {"secretName": "s3"}},
            ],
        }
    }
    assert referenced_objects(pod) == ({"c1", "c2"}, {"s1", "s2", "s3"})


def test_a_checkout_under_a_fresh_directory_is_kept_visible() -> None:
    from hack.node_agent.container import kept_under

    fresh = ("/tmp", "/run", "/var/tmp")
    assert kept_under(fresh, ("/tmp/ci-clone", "/tmp/ci-clone/.venv")) == [
        "/tmp/ci-clone",
        "/tmp/ci-clone/.venv",
    ]
    assert kept_under(fresh, ("/work/main", "/work/main/.venv")) == []
    assert kept_under(fresh, ("/tmpfoo/x",)) == []
