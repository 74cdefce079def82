"""Files of ConfigMap, Secret, projected and downwardAPI volumes, and how they are published.

Aspects covered:
- all keys or the listed items, with item paths and modes over the volume's default mode;
- missing objects and keys are errors unless optional; paths may not escape the volume;
- projected volumes combine sources (ConfigMap, Secret, downwardAPI, service account token);
- unsupported volume types are refused with the volume named;
- publishing swaps a ``..data`` link so a reader sees the old set or the new one, and an
  unchanged set is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from hack.node_agent.podenv import ConfigError
from hack.node_agent.podvolumes import FileSources, FileSpec, plan_files, volume_kind, write_atomic

POD: dict[str, Any] = {
    "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}},
    "spec": {"containers": [{"name": "c"}]},
}


def src(**cms: dict[str, bytes]) -> FileSources:
    secrets = {"sec": {"token": b"t", "ca.crt": b"CA"}}
    return FileSources(
        configmaps=cms.get,
        secrets=secrets.get,
        pod=POD,
        pod_ip="198.18.12.3",
        token=lambda aud, exp: f"jwt-{aud}-{exp}",
    )


def test_configmap_gives_every_key_with_the_default_mode() -> None:
    files = plan_files({"name": "v", "configMap": {"name": "cm"}}, src(cm={"a": b"1", "b": b"2"}))
    assert files == [FileSpec("a", b"1", 0o644), FileSpec("b", b"2", 0o644)]


def test_items_choose_keys_paths_and_modes() -> None:
    vol = {
        "name": "v",
        "secret": {
            "secretName": "sec",
            "defaultMode": 0o400,
            "items": [
                {"key": "token", "path": "auth/token"},
                {"key": "ca.crt", "path": "ca", "mode": 0o444},
            ],
        },
    }
    assert plan_files(vol, src()) == [
        FileSpec("auth/token", b"t", 0o400),
        FileSpec("ca", b"CA", 0o444),
    ]


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"name": "v", "configMap": {"name": "gone"}}, 'configmap "gone" not found'),
        (
            {"name": "v", "secret": {"secretName": "sec", "items": [{"key": "x", "path": "x"}]}},
            'configuration key "x" not found in secret "sec"',
        ),
        (
            {"name": "v", "configMap": {"name": "cm", "items": [{"key": "a", "path": "../a"}]}},
            "invalid path '../a'",
        ),
    ],
)
def test_missing_or_escaping_entries_are_refused(volume: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_files(volume, src(cm={"a": b"1"}))


def test_optional_missing_configmap_gives_an_empty_volume() -> None:
    assert plan_files({"name": "v", "configMap": {"name": "gone", "optional": True}}, src()) == []


def test_projected_volume_combines_sources() -> None:
    vol = {
        "name": "kube-api-access",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "root-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ]
        },
    }
    files = plan_files(vol, src(**{"root-ca": {"ca.crt": b"CA"}}))
    assert [(f.path, f.data) for f in files] == [
        ("token", b"jwt--3607"),
        ("ca.crt", b"CA"),
        ("namespace", b"ns"),
    ]


def test_unsupported_volume_type_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="volume 'host': type hostPath is not supported"):
        volume_kind({"name": "host", "hostPath": {"path": "/etc"}})


def test_publishing_swaps_the_data_link_and_skips_unchanged_sets(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomic(target, [FileSpec("a", b"1", 0o644), FileSpec("d/b", b"2", 0o600)], None)
    first = os.readlink(target / "..data")
    assert (target / "a").read_bytes() == b"1"
    assert (target / "d" / "b").read_bytes() == b"2"
    assert (target / "a").is_symlink()
    assert not write_atomic(
        target, [FileSpec("a", b"1", 0o644), FileSpec("d/b", b"2", 0o600)], None
    )
    assert write_atomic(target, [FileSpec("a", b"3", 0o644)], None)
    assert os.readlink(target / "..data") != first
    assert (target / "a").read_bytes() == b"3"
    assert not (target / "d").exists()
    assert not (target / first).exists()
