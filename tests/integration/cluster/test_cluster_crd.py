"""CustomResourceDefinitions behave on the local control plane as on a real cluster.

Aspects covered:
- a CRD with a structural schema becomes Established and its kind is served (list, explain);
- the API server itself rejects an invalid object, with its own messages for OpenAPI rules
  (``minimum``, ``enum``) and for CEL rules (``x-kubernetes-validations``);
- fields outside the schema are pruned;
- the status subresource: status is written only through ``/status``, spec writes bump
  ``metadata.generation`` and status writes do not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hack.cluster import Cluster
from tests.fixtures.cluster import apply, get_json, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

GROUP = "it.ragops.io"
CRD = f"widgets.{GROUP}"
CRD_MANIFEST = f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {CRD}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: Desired state of the widget.
            x-kubernetes-validations:
            - rule: self.minReplicas <= self.maxReplicas
              message: maxReplicas must be at least minReplicas
              fieldPath: .maxReplicas
            properties:
              replicas:
                type: integer
                minimum: 0
                default: 1
                description: Pods to run.
              size:
                type: string
                enum: [small, large]
              minReplicas: {{type: integer, default: 0}}
              maxReplicas: {{type: integer, default: 10}}
          status:
            type: object
            properties:
              phase: {{type: string}}
              observedGeneration: {{type: integer}}
"""


def _widget(name: str, spec: str) -> str:
    return f"""
apiVersion: {GROUP}/v1alpha1
kind: Widget
metadata:
  name: {name}
spec: {spec}
"""


@pytest.fixture(scope="module")
def widget_crd(cluster: Cluster) -> Iterator[str]:
    cluster.kubectl("apply", "-f", "-", input=CRD_MANIFEST)
    cluster.kubectl("wait", f"crd/{CRD}", "--for=condition=Established", "--timeout=30s")
    yield CRD
    cluster.kubectl("delete", f"crd/{CRD}", "--wait=false", check=False)


def test_crd_with_structural_schema_is_established_and_served(
    cluster: Cluster, widget_crd: str, namespace: str
) -> None:
    crd = get_json(cluster, f"crd/{widget_crd}")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions.get("NonStructuralSchema", "False") == "False"

    apply(cluster, namespace, _widget("w1", "{replicas: 2, size: small}"))
    listed = cluster.kubectl("get", "widgets", "-n", namespace, "-o", "name").stdout.split()
    assert listed == [f"widget.{GROUP}/w1"]
    # Defaults from the schema are applied by the API server.
    widget = get_json(cluster, "-n", namespace, "wd/w1")
    assert widget["spec"]["maxReplicas"] == 10

    # The schema is published through OpenAPI: kubectl explain prints its descriptions.
    def explained() -> bool:
        out = cluster.kubectl("explain", "widgets.spec.replicas", check=False)
        return out.returncode == 0 and "Pods to run." in out.stdout

    wait_for(explained, timeout=30, what="kubectl explain of the Widget schema")


def test_invalid_object_is_rejected_with_the_api_servers_message(
    cluster: Cluster, widget_crd: str, namespace: str
) -> None:
    bad_minimum = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=_widget("neg", "{replicas: -1}"), check=False
    )
    assert bad_minimum.returncode != 0
    assert (
        "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or "
        "equal to 0" in bad_minimum.stderr
    )

    bad_enum = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=_widget("big", "{size: huge}"), check=False
    )
    assert bad_enum.returncode != 0
    assert 'spec.size: Unsupported value: "huge"' in bad_enum.stderr

    bad_cel = cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=_widget("cel", "{minReplicas: 5, maxReplicas: 2}"),
        check=False,
    )
    assert bad_cel.returncode != 0
    assert "spec.maxReplicas: Invalid value" in bad_cel.stderr
    assert "maxReplicas must be at least minReplicas" in bad_cel.stderr
    assert cluster.kubectl("get", "widgets", "-n", namespace, "-o", "name").stdout.strip() == ""


def test_fields_outside_the_schema_are_pruned(
    cluster: Cluster, widget_crd: str, namespace: str
) -> None:
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "--validate=false",
        "-f",
        "-",
        input=_widget("pruned", "{replicas: 1, bogus: yes}"),
    )
    assert "bogus" not in get_json(cluster, "-n", namespace, "widget/pruned")["spec"]


def test_status_subresource_separates_status_from_spec(
    cluster: Cluster, widget_crd: str, namespace: str
) -> None:
    apply(cluster, namespace, _widget("st", "{replicas: 1}"))
    before = get_json(cluster, "-n", namespace, "widget/st")
    generation = before["metadata"]["generation"]

    status = {"status": {"phase": "Ready", "observedGeneration": generation}}
    cluster.kubectl(
        "patch", "-n", namespace, "widget/st", "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip
    after_status = get_json(cluster, "-n", namespace, "widget/st")
    assert after_status["status"] == status["status"]
    assert after_status["metadata"]["generation"] == generation

    # Through the main resource a status change is ignored and a spec change bumps generation.
    cluster.kubectl(
        "patch", "-n", namespace, "widget/st", "--type=merge",
        "-p", json.dumps({"spec": {"replicas": 3}, "status": {"phase": "Hacked"}}),
    )  # fmt: skip
    after_spec = get_json(cluster, "-n", namespace, "widget/st")
    assert after_spec["status"]["phase"] == "Ready"
    assert after_spec["spec"]["replicas"] == 3
    assert after_spec["metadata"]["generation"] == generation + 1
