"""A container's environment and argv, as the kubelet resolves them.

Aspects covered:
- ``$(VAR)`` expansion: known names, unknown kept, ``$$`` escapes, unterminated references;
- order and precedence: envFrom (with prefixes, later sources win), then env entries, which
  may refer to earlier ones; Service variables fill in what is not defined;
- ConfigMap/Secret references: missing objects and keys are errors unless optional;
- pod fields and resource fields (with divisors); quantities;
- the image's ENV is the base; command and args are expanded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from hack.node_agent.podenv import (
    ConfigError,
    EnvSources,
    ServiceLink,
    container_env,
    expand,
    expand_argv,
    parse_quantity,
    process_env,
    service_env,
)

POD: dict[str, Any] = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
    "spec": {"nodeName": "node-a", "serviceAccountName": "sa"},
}


def sources(
    cms: Mapping[str, Mapping[str, str]] | None = None,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    services: tuple[ServiceLink, ...] = (),
    pod: Mapping[str, Any] = POD,
) -> EnvSources:
    cms, secrets = dict(cms or {}), dict(secrets or {})
    return EnvSources(
        configmaps=cms.get,
        secrets=secrets.get,
        pod=pod,
        pod_ip="198.18.12.7",
        host_ip="198.18.12.1",
        services=services,
        node_allocatable=lambda name: {"cpu": "2", "memory": "8Gi"}[name],
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)", "1"),
        ("x$(A)y$(B)z", "x1y2z"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("$$", "$"),
        ("cost: $5", "cost: $5"),
        ("$(A", "$(A"),
        ("end$", "end$"),
        ("$()", "$()"),
    ],
)
def test_expansion_follows_kubernetes_rules(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "2"}.get) == expected


def test_env_entries_override_env_from_and_refer_to_earlier_ones() -> None:
    container = {
        "envFrom": [
            {"configMapRef": {"name": "cm"}},
            {"secretRef": {"name": "sec"}, "prefix": "S_"},
            {"configMapRef": {"name": "cm2"}},
        ],
        "env": [
            {"name": "MODE", "value": "explicit"},
            {"name": "COMBINED", "value": "$(MODE)/$(S_TOKEN)/$(LEVEL)"},
            {"name": "LATER", "value": "$(DEFINED_BELOW)"},
            {"name": "DEFINED_BELOW", "value": "x"},
        ],
    }
    env = container_env(
        container,
        sources(
            cms={"cm": {"MODE": "cm", "LEVEL": "1"}, "cm2": {"LEVEL": "2"}},
            secrets={"sec": {"TOKEN": "t"}},
        ),
    )
    assert env["MODE"] == "explicit"
    assert env["LEVEL"] == "2"
    assert env["S_TOKEN"] == "t"
    assert env["COMBINED"] == "explicit/t/2"
    assert env["LATER"] == "$(DEFINED_BELOW)"


def test_value_from_configmap_secret_fields_and_resources() -> None:
    container = {
        "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "250m"}},
        "env": [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a"}}},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "b"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {
                "name": "CPU_M",
                "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}},
            },
            {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        ],
    }
    env = container_env(container, sources(cms={"cm": {"a": "1"}}, secrets={"sec": {"b": "2"}}))
    assert (env["A"], env["B"], env["IP"], env["NODE"], env["APP"]) == (
        "1",
        "2",
        "198.18.12.7",
        "node-a",
        "x",
    )
    assert (env["MEM"], env["CPU_M"]) == ("128", "250")
    assert env["CPU_LIMIT"] == "2"  # no limit: the node's allocatable


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"configMapKeyRef": {"name": "nope", "key": "a"}}, 'configmap "nope" not found'),
        ({"secretKeyRef": {"name": "sec", "key": "zz"}}, "couldn't find key zz in secret sec"),
    ],
)
def test_missing_reference_is_an_error_naming_it(entry: dict[str, Any], message: str) -> None:
    container = {"env": [{"name": "X", "valueFrom": entry}]}
    with pytest.raises(ConfigError, match=message):
        container_env(container, sources(secrets={"sec": {"b": "2"}}))


def test_optional_references_are_skipped() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "absent", "optional": True}}],
        "env": [
            {
                "name": "X",
                "valueFrom": {"secretKeyRef": {"name": "no", "key": "k", "optional": True}},
            },
        ],
    }
    assert "X" not in container_env(container, sources())


def test_missing_env_from_source_is_an_error() -> None:
    with pytest.raises(ConfigError, match='secret "absent" not found'):
        container_env({"envFrom": [{"secretRef": {"name": "absent"}}]}, sources())


def test_service_links_fill_in_without_overriding() -> None:
    svc = ServiceLink("my-db", "198.18.0.9", (("pg", 5432, "TCP"), ("metrics", 9187, "TCP")))
    env = container_env(
        {
            "env": [
                {"name": "MY_DB_SERVICE_HOST", "value": "mine"},
                {"name": "URL", "value": "$(MY_DB_SERVICE_PORT)"},
            ]
        },
        sources(services=(svc,)),
    )
    assert env["MY_DB_SERVICE_HOST"] == "mine"
    assert env["URL"] == "5432"
    assert env["MY_DB_PORT"] == "tcp://198.18.0.9:5432"
    assert env["MY_DB_SERVICE_PORT_METRICS"] == "9187"
    assert env["MY_DB_PORT_9187_TCP_ADDR"] == "198.18.0.9"


def test_service_links_skip_headless_services_and_can_be_turned_off() -> None:
    headless = ServiceLink("db", "None", (("pg", 5432, "TCP"),))
    kube = ServiceLink("kubernetes", "198.18.0.1", (("https", 443, "TCP"),))
    assert "DB_SERVICE_HOST" not in service_env([headless])
    pod = {**POD, "spec": {**POD["spec"], "enableServiceLinks": False}}
    other = ServiceLink("other", "198.18.0.5", (("http", 80, "TCP"),))
    env = container_env({}, sources(services=(kube, other), pod=pod))
    assert env["KUBERNETES_SERVICE_HOST"] == "198.18.0.1"
    assert "OTHER_SERVICE_HOST" not in env


def test_image_env_is_the_base_and_argv_is_expanded() -> None:
    full = process_env({"PATH": "/image/bin", "HOME": "/h"}, {"HOME": "/mine"})
    assert full == {"PATH": "/image/bin", "HOME": "/mine"}
    assert expand_argv(["--pw", "$(PW)", "$$(PW)"], {"PW": "s"}) == ["--pw", "s", "$(PW)"]


@pytest.mark.parametrize(
    ("text", "value"), [("250m", 0.25), ("1Gi", 2**30), ("2", 2), ("1.5k", 1500), ("64Mi", 2**26)]
)
def test_quantities(text: str, value: float) -> None:
    assert float(parse_quantity(text)) == value


def test_bad_quantity_is_refused() -> None:
    with pytest.raises(ConfigError, match="invalid quantity"):
        parse_quantity("12 apples")
