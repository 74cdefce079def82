"""The API key the operator's probes and quality gate send (fake API, no cluster).

Aspects covered: by default the generated admin key, read from the system's Secret; the
Secret key `rollout.canary.probes.apiKeySecretRef` names when it is set; none needed under
anonymous access; with `api.apiKeysSecretRef` and no probe key, or a Secret that is missing,
no probe is sent and the problem names what to set (401s would otherwise pass as data);
the key goes out as a Bearer header and never shows in a repr.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from rag_operator.models import RagSystem
from rag_operator.models.naming import PROBE_HEADER
from rag_operator.observed import Observed, PodInfo
from rag_operator.release.probes import ProbeKey, probe_key, probe_key_ref, probe_targets
from rag_operator.release.state import Plan
from tests.unit.operator.fakes import FakeKube
from tests.unit.operator.helpers import make_rs

CANARY = {"strategy": "Canary"}


def _secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"metadata": {"name": name}, "data": encoded}


def _key(rs: RagSystem, kube: FakeKube) -> ProbeKey:
    return asyncio.run(probe_key(rs, kube))  # type: ignore[arg-type]


def test_the_generated_admin_key_by_default() -> None:
    rs = make_rs({"rollout": CANARY})
    assert probe_key_ref(rs) == ("demo-api-keys", "admin-key")
    key = _key(rs, FakeKube({"demo-api-keys": _secret("demo-api-keys", **{"admin-key": "s3"})}))
    assert key == ProbeKey(key="s3")


def test_the_secret_key_the_spec_names() -> None:
    probes = {"apiKeySecretRef": {"name": "team-keys", "key": "probe"}}
    spec = {
        "api": {"apiKeysSecretRef": {"name": "team-keys", "key": "keys"}},
        "rollout": {"strategy": "Canary", "canary": {"probes": probes}},
    }
    rs = make_rs(spec)
    assert probe_key_ref(rs) == ("team-keys", "probe")
    kube = FakeKube({"team-keys": _secret("team-keys", probe="p-key\n", keys='["p-key"]')})
    assert _key(rs, kube).key == "p-key"


def test_no_key_under_anonymous_access() -> None:
    rs = make_rs({"api": {"auth": {"anonymous": True}}, "rollout": CANARY})
    assert probe_key_ref(rs) is None
    assert _key(rs, FakeKube()) == ProbeKey()


def test_user_keys_without_a_probe_key_stop_the_probes_and_say_what_to_set() -> None:
    spec = {"api": {"apiKeysSecretRef": {"name": "team-keys", "key": "keys"}}, "rollout": CANARY}
    rs = make_rs(spec)
    key = _key(rs, FakeKube())
    assert key.key is None
    assert "spec.rollout.canary.probes.apiKeySecretRef" in key.problem
    pods = [PodInfo(name="demo-api-1", ip="10.0.0.1", ready=True, component="api")]
    plan = Plan(stable_version="0.1.0", canary_version=None, weight=0)
    assert probe_targets(rs, Observed(pods=pods), plan, True, key) is None


def test_a_missing_key_secret_is_named() -> None:
    rs = make_rs({"rollout": CANARY})
    key = _key(rs, FakeKube())
    assert key.key is None
    assert "Secret 'demo-api-keys' key 'admin-key'" in key.problem


def test_probes_carry_the_key_as_a_bearer_header_never_in_a_repr() -> None:
    rs = make_rs({"rollout": CANARY})
    pods = [PodInfo(name="demo-api-1", ip="10.0.0.1", ready=True, component="api")]
    plan = Plan(stable_version="0.1.0", canary_version=None, weight=0)
    targets = probe_targets(rs, Observed(pods=pods), plan, True, ProbeKey(key="s3cret"))
    assert targets is not None
    assert targets.headers() == {PROBE_HEADER: "1", "Authorization": "Bearer s3cret"}
    assert "s3cret" not in repr(targets)
    assert "s3cret" not in repr(ProbeKey(key="s3cret"))
