"""The operator's policy over images and referenced Secrets (OperatorConfig).

Aspects covered: images are compared in full (Docker Hub short names expanded), a prefix
without a trailing separator matches a whole path segment only (ghcr.io/ragops does not
allow ghcr.io/ragops-evil); every image the spec names is checked, the operator's own store
defaults are not; Secret names against glob patterns; Secret labels against the selector;
the settings come from RAGOPS_* env; a refused RagSystem gets no children at all and is
Degraded with the refused field named, and a permitted one is untouched by the policy.
"""

from __future__ import annotations

import asyncio

import pytest

from rag_operator.builders.runtime import SecretReference
from rag_operator.models import OperatorConfig, Phase
from rag_operator.observed import Observed
from rag_operator.policy import (
    image_allowed,
    image_refusals,
    normalize_image,
    secret_label_refusal,
    secret_name_refusal,
)
from rag_operator.reconcile import reconcile
from tests.unit.operator.fakes import FakeKube
from tests.unit.operator.helpers import NO_CRDS, make_rs


@pytest.mark.parametrize(
    ("image", "full"),
    [
        ("redis:7.4-alpine", "docker.io/library/redis:7.4-alpine"),
        ("pgvector/pgvector:pg17", "docker.io/pgvector/pgvector:pg17"),
        ("ghcr.io/ragops/rag-runtime:0.1.0", "ghcr.io/ragops/rag-runtime:0.1.0"),
        ("localhost/x:1", "localhost/x:1"),
        ("registry:5000/x:1", "registry:5000/x:1"),
    ],
)
def test_images_are_compared_in_full(image: str, full: str) -> None:
    assert normalize_image(image) == full


@pytest.mark.parametrize(
    ("image", "prefixes", "allowed"),
    [
        ("ghcr.io/ragops/rag-runtime:0.1.0", ("ghcr.io/ragops/",), True),
        ("ghcr.io/ragops/rag-runtime:0.1.0", ("ghcr.io/ragops",), True),
        ("ghcr.io/ragops-evil/rag-runtime:0.1.0", ("ghcr.io/ragops",), False),
        ("ghcr.io/ragops.evil.com/x:1", ("ghcr.io/ragops/",), False),
        ("redis:7.4-alpine", ("docker.io/library/redis",), True),
        ("redis-evil:1", ("docker.io/library/redis",), False),
        ("evil.io/ragops/rag-runtime:0.1.0", ("ghcr.io/ragops/", "quay.io/"), False),
    ],
)
def test_image_prefixes(image: str, prefixes: tuple[str, ...], allowed: bool) -> None:
    assert image_allowed(image, prefixes) is allowed


def test_every_image_the_spec_names_is_checked_and_the_operator_defaults_are_not() -> None:
    cfg = OperatorConfig(allowed_image_prefixes=("ghcr.io/ragops/",))
    rs = make_rs({"redis": {"managed": {"image": "evil.io/redis:7"}}})
    refused = image_refusals(rs, cfg)
    assert [r.reason for r in refused] == ["ImageNotAllowed"]
    assert refused[0].message.startswith("spec.redis.managed.image: image 'evil.io/redis:7'")
    bad = make_rs({"image": {"repository": "evil.io/rag"}})
    assert image_refusals(bad, cfg)[0].message.startswith("spec.image.repository:")
    assert image_refusals(make_rs(), OperatorConfig()) == []


REF = SecretReference("spec.generation.apiKeySecretRef", "openai", "key")


def test_secret_names_against_patterns() -> None:
    cfg = OperatorConfig(allowed_secret_names=("rag-*", "shared-openai"))
    refusal = secret_name_refusal(REF, cfg)
    assert refusal is not None
    assert refusal.message.startswith("spec.generation.apiKeySecretRef: Secret 'openai'")
    ok = SecretReference("spec.generation.apiKeySecretRef", "rag-openai", "key")
    assert secret_name_refusal(ok, cfg) is None
    assert secret_name_refusal(REF, OperatorConfig()) is None


@pytest.mark.parametrize(
    ("selector", "labels", "allowed"),
    [
        ("ragops.io/allowed=true", {"ragops.io/allowed": "true"}, True),
        ("ragops.io/allowed=true", {"ragops.io/allowed": "false"}, False),
        ("ragops.io/allowed=true", {}, False),
        ("ragops.io/allowed", {"ragops.io/allowed": ""}, True),
        ("a=1,b", {"a": "1"}, False),
        ("", {}, True),
    ],
)
def test_secret_labels_against_the_selector(
    selector: str, labels: dict[str, str], allowed: bool
) -> None:
    refusal = secret_label_refusal(REF, labels, OperatorConfig(secret_label_selector=selector))
    assert (refusal is None) is allowed


def test_policy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGOPS_ALLOWED_IMAGE_PREFIXES", '["ghcr.io/ragops/"]')
    monkeypatch.setenv("RAGOPS_ALLOWED_SECRET_NAMES", '["rag-*"]')
    monkeypatch.setenv("RAGOPS_SECRET_LABEL_SELECTOR", "ragops.io/allowed=true")
    cfg = OperatorConfig()
    assert cfg.allowed_image_prefixes == ("ghcr.io/ragops/",)
    assert cfg.allowed_secret_names == ("rag-*",)
    assert cfg.secret_label_selector == "ragops.io/allowed=true"


def test_a_refused_system_gets_no_children_and_names_the_field() -> None:
    cfg = OperatorConfig(allowed_image_prefixes=("ghcr.io/ragops/",))
    rs = make_rs({"image": {"repository": "evil.io/miner"}})
    kube = FakeKube()
    outcome = asyncio.run(reconcile(rs, cfg, kube, Observed(), NO_CRDS))  # type: ignore[arg-type]
    assert kube.applied == []
    assert kube.created == []
    assert outcome.status.phase == Phase.DEGRADED
    degraded = next(c for c in outcome.status.conditions if c.type == "Degraded")
    assert degraded.reason == "ImageNotAllowed"
    assert degraded.message.startswith("spec.image.repository: image 'evil.io/miner:0.1.0'")


def test_a_secret_without_the_label_is_refused_and_nothing_applied() -> None:
    cfg = OperatorConfig(secret_label_selector="ragops.io/allowed=true")
    spec = {"generation": {"provider": "openai", "apiKeySecretRef": {"name": "db", "key": "k"}}}
    kube = FakeKube(secrets={"db": {"metadata": {"name": "db"}, "data": {"k": "eA=="}}})
    outcome = asyncio.run(reconcile(make_rs(spec), cfg, kube, Observed(), NO_CRDS))  # type: ignore[arg-type]
    assert kube.applied == []
    degraded = next(c for c in outcome.status.conditions if c.type == "Degraded")
    assert degraded.reason == "SecretNotAllowed"
    assert "spec.generation.apiKeySecretRef: Secret 'db' lacks the label" in degraded.message
    labelled = {"metadata": {"labels": {"ragops.io/allowed": "true"}}, "data": {"k": "eA=="}}
    kube = FakeKube(secrets={"db": labelled})
    asyncio.run(reconcile(make_rs(spec), cfg, kube, Observed(), NO_CRDS))  # type: ignore[arg-type]
    assert kube.applied != []
