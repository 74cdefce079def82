"""NetworkPolicies are enforced for real pods: the node agent turns them into nftables rules in
each pod's network namespace, and its Service proxy refuses what they do not allow.

Aspects covered:
- ingress: a server selected by a policy answers a client its `from` names, directly and
  through its Service, and no other client either way; its readiness probe (from the node)
  still passes; the named port of the rule resolves to the container's port;
- egress: a client whose policy allows only DNS reaches nothing, directly or through a
  Service, while its lookups still resolve;
- a namespaceSelector peer admits a client of another namespace by that namespace's labels;
- the rules follow the policies: once the ingress policy is deleted, any client gets in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hack.cluster import Cluster
from tests.fixtures.cluster import apply, get_json, logs, namespace_for, wait_phase

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

# What a client pod prints: the status of a GET to the server's pod address and to its
# Service, or the name of the error (a drop times out, a proxy refusal disconnects).
CLIENT = """
import json, os, socket, urllib.request
out = {"dns": socket.gethostbyname(os.environ["SERVICE"])}
for name, url in (("direct", f"http://{os.environ['WEB_IP']}:8000/"),
                  ("service", f"http://{os.environ['SERVICE']}/")):
    try:
        out[name] = urllib.request.urlopen(url, timeout=3).status
    except Exception as exc:
        out[name] = type(exc).__name__
print(json.dumps(out))
"""

SERVER = """
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: web
    image: python:3.11
    command: [python, -m, http.server, "8000"]
    ports: [{name: http, containerPort: 8000}]
    readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"""

POLICIES = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-friends}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {role: friend}}
    - namespaceSelector: {matchLabels: {team: friends}}
    ports: [{port: http}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: jailed-dns-only}
spec:
  podSelector: {matchLabels: {role: jailed}}
  policyTypes: [Egress]
  egress:
  - ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]
"""


@pytest.fixture
def other_ns(cluster: Cluster) -> Iterator[str]:
    yield from namespace_for(cluster, "np", real=True)


def _client(cluster: Cluster, ns: str, name: str, role: str, web_ip: str, service: str) -> dict:
    labels = json.dumps({"role": role} if role else {})
    env = json.dumps([{"name": "WEB_IP", "value": web_ip}, {"name": "SERVICE", "value": service}])
    apply(
        cluster,
        ns,
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {labels}}}
spec:
  restartPolicy: Never
  containers:
  - {{name: main, image: python:3.11, env: {env}, command: [python, -c, {json.dumps(CLIENT)}]}}
""",
    )
    p = wait_phase(cluster, ns, name, "Succeeded", "Failed")
    assert p["status"]["phase"] == "Succeeded", logs(cluster, ns, name)
    line = next(ln for ln in logs(cluster, ns, name).splitlines() if ln.startswith("{"))
    out: dict = json.loads(line)
    return out


def test_policies_decide_who_reaches_a_pod_directly_and_through_its_service(
    cluster: Cluster, real_ns: str, other_ns: str
) -> None:
    apply(cluster, real_ns, POLICIES)
    apply(cluster, real_ns, SERVER)
    cluster.kubectl("wait", "pod/web", "-n", real_ns, "--for=condition=Ready", "--timeout=90s")
    web_ip = get_json(cluster, "-n", real_ns, "pod", "web")["status"]["podIP"]
    service_ip = get_json(cluster, "-n", real_ns, "service", "web")["spec"]["clusterIP"]
    local = ("web", service_ip)
    remote = (f"web.{real_ns}", service_ip)

    friend = _client(cluster, real_ns, "friend", "friend", web_ip, local[0])
    assert friend == {"dns": local[1], "direct": 200, "service": 200}
    stranger = _client(cluster, real_ns, "stranger", "", web_ip, local[0])
    assert stranger["direct"] != 200, stranger
    assert stranger["service"] != 200, stranger
    jailed = _client(cluster, real_ns, "jailed", "jailed", web_ip, local[0])
    assert jailed["dns"] == local[1], jailed  # DNS is what its egress allows
    assert jailed["direct"] != 200, jailed
    assert jailed["service"] != 200, jailed

    outsider = _client(cluster, other_ns, "outsider", "", web_ip, remote[0])
    assert outsider["direct"] != 200, outsider
    assert outsider["service"] != 200, outsider
    cluster.kubectl("label", "namespace", other_ns, "team=friends")
    admitted = _client(cluster, other_ns, "admitted", "", web_ip, remote[0])
    assert admitted == {"dns": remote[1], "direct": 200, "service": 200}

    cluster.kubectl("delete", "networkpolicy", "web-from-friends", "-n", real_ns)
    anyone = _client(cluster, real_ns, "anyone", "", web_ip, local[0])
    assert anyone == {"dns": local[1], "direct": 200, "service": 200}
