"""Fixtures for the operator-at-scale tests: the CRD, client and namespace fixtures of
tests/integration/operator; every test starts the operator processes it measures (so no
other operator reconciles its systems)."""

from __future__ import annotations

from tests.integration.operator.conftest import crd, kube, ns

__all__ = ["crd", "kube", "ns"]
