"""The migration Job builder.

Aspects covered: the Job runs `rag-runtime migrate` of the version it is given (not
spec.version), with the system's runtime settings, the `migrate` component label, bounded
retries and deadline, `FallbackToLogsOnError`, restricted security like the other pods and
pull secrets; its pod waits up to 120 s for Postgres (RAG_MIGRATE_WAIT_SECONDS); it is owned
by the RagSystem.
"""

from __future__ import annotations

import pytest

from rag_operator.builders import runtime_config
from rag_operator.builders.job import build_migration_job
from tests.unit.operator.helpers import CFG, make_rs


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0-rc.1"])
def test_job_runs_migrate_of_the_given_version(version: str) -> None:
    rs = make_rs({"version": "9.9.9"})
    job = build_migration_job(rs, CFG, runtime_config(rs), "demo-migrate-1", version)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/ragops/rag-runtime:{version}"
    assert container["command"] == ["rag-runtime"]
    assert container["args"] == ["migrate"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["envFrom"] == [{"configMapRef": {"name": "demo-config"}}]
    assert {"RAG_DATABASE_URL"} <= {e["name"] for e in container["env"]}
    assert job["metadata"]["annotations"]["ragops.io/version"] == version
    # It waits for Postgres to accept connections (an env var: older runtimes ignore it).
    wait = [e for e in container["env"] if e["name"] == "RAG_MIGRATE_WAIT_SECONDS"]
    assert wait == [{"name": "RAG_MIGRATE_WAIT_SECONDS", "value": "120"}]
    assert int(wait[0]["value"]) < job["spec"]["activeDeadlineSeconds"]


def test_job_is_bounded_restricted_and_owned() -> None:
    rs = make_rs({"image": {"pullSecrets": [{"name": "reg"}]}})
    job = build_migration_job(rs, CFG, runtime_config(rs), "demo-migrate-1", "0.1.0")
    spec = job["spec"]
    assert 0 < spec["backoffLimit"] <= 6
    assert 0 < spec["activeDeadlineSeconds"] <= 3600
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["imagePullSecrets"] == [{"name": "reg"}]
    sc = pod["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    labels = spec["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "migrate"
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migrate"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "RagSystem"
