"""Operator wiring that needs no cluster: API paths, command line, invalid-spec status.

Aspects covered: resource paths for core, grouped and custom kinds; `ragops-operator`
arguments; an object the models reject gets a Degraded status naming the field; kopf
handlers and watch caches are registered.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rag_operator import handlers, main
from rag_operator.kube import resource_path
from rag_operator.models import RagSystemSpec


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("v1", "ConfigMap", "ns", "x"), "/api/v1/namespaces/ns/configmaps/x"),
        (("apps/v1", "Deployment", "ns", None), "/apis/apps/v1/namespaces/ns/deployments"),
        (
            ("ragops.io/v1alpha1", "RagSystem", "ns", "r"),
            "/apis/ragops.io/v1alpha1/namespaces/ns/ragsystems/r",
        ),
        (("v1", "Namespace", None, "ns"), "/api/v1/namespaces/ns"),
        (
            ("policy/v1", "PodDisruptionBudget", "a", "b"),
            "/apis/policy/v1/namespaces/a/poddisruptionbudgets/b",
        ),
    ],
)
def test_resource_paths(args: tuple[str, str, str | None, str | None], path: str) -> None:
    assert resource_path(*args) == path


def test_command_line_defaults_to_all_namespaces() -> None:
    args = main.parse_args([])
    assert args.namespace == []
    assert args.metrics_port == 8080
    assert args.liveness_port == 8081


def test_command_line_takes_a_namespace_list() -> None:
    args = main.parse_args(["-n", "a", "-n", "b", "--resync-seconds", "2"])
    assert args.namespace == ["a", "b"]
    assert args.resync_seconds == 2.0


def test_rejected_spec_gets_degraded_status_naming_the_field() -> None:
    body = {
        "metadata": {"name": "x", "namespace": "n", "generation": 3},
        "spec": {"version": "1", "api": {"replicas": -4}},
    }
    with pytest.raises(ValidationError) as info:
        RagSystemSpec.model_validate(body["spec"])
    status = handlers._invalid_status(body, info.value)
    degraded = next(c for c in status.conditions if c.type == "Degraded")
    assert degraded.reason == "InvalidSpec"
    assert "spec.api.replicas" in degraded.message
    assert status.observed_generation == 3
    assert status.phase.value == "Degraded"


def test_child_kinds_have_watch_caches() -> None:
    plurals = {p for _g, _v, p in handlers.CHILD_KINDS}
    assert {"deployments", "statefulsets", "services", "configmaps"} <= plurals
