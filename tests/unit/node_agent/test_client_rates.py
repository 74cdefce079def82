"""The local control plane's client rate limits (`hack.cluster.client_rate_flags`).

Aspects covered: the controller-manager and scheduler get 200 requests/s (burst 300) unless
RAGOPS_CLUSTER_CLIENT_QPS says otherwise (the burst follows at 1.5 times); a value that is
not a positive number is refused, naming the variable.
"""

from __future__ import annotations

import pytest

from hack.cluster import CLIENT_QPS, ClusterError, client_rate_flags


def test_default_rate_is_raised_above_upstreams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGOPS_CLUSTER_CLIENT_QPS", raising=False)
    assert CLIENT_QPS == 200.0
    assert client_rate_flags() == ["--kube-api-qps=200", "--kube-api-burst=300"]


def test_upstream_rate_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGOPS_CLUSTER_CLIENT_QPS", "20")
    assert client_rate_flags() == ["--kube-api-qps=20", "--kube-api-burst=30"]


@pytest.mark.parametrize("value", ["fast", "0", "-5"])
def test_bad_rate_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("RAGOPS_CLUSTER_CLIENT_QPS", value)
    with pytest.raises(ClusterError, match="RAGOPS_CLUSTER_CLIENT_QPS"):
        client_rate_flags()
