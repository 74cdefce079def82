"""Ingress of the API."""

from __future__ import annotations

import pytest

from rag_operator.builders.ingress import build_api_ingress
from tests.unit.operator.helpers import CFG, make_rs


@pytest.mark.parametrize(
    ("ingress", "tls", "klass"),
    [
        ({"host": "a.example.com"}, None, None),
        ({"host": "b.example.com", "tlsSecretName": "b-tls"}, "b-tls", None),
        ({"host": "c.example.com", "className": "nginx"}, None, "nginx"),
    ],
)
def test_ingress_host_class_and_tls(
    ingress: dict[str, str], tls: str | None, klass: str | None
) -> None:
    obj = build_api_ingress(make_rs({"api": {"exposure": {"ingress": ingress}}}), CFG)
    rule = obj["spec"]["rules"][0]
    assert rule["host"] == ingress["host"]
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "demo-api"
    assert obj["spec"].get("ingressClassName") == klass
    if tls:
        assert obj["spec"]["tls"] == [{"hosts": [ingress["host"]], "secretName": tls}]
    else:
        assert "tls" not in obj["spec"]


def test_ingress_builder_refuses_spec_without_ingress() -> None:
    with pytest.raises(ValueError, match="ingress"):
        build_api_ingress(make_rs(), CFG)
