"""The NetworkPolicies of the `policies` and `full` overlays (components/network-policies),
enforced on the real cluster by kube-router (components/policy-engine): for each policy, a
path it allows connects and a path it is meant to stop does not.

Every denial is falsifiable: it targets a port that is listening (a control connects to
it first, from inside the target's own pod, or along a path a policy allows), so a policy
that is not enforced makes the denial test fail. A denied connect is refused (kube-router
REJECTs) or times out (3 s); an allowed one connects. Probes run inside the pods with
`kubectl exec`: Python in the services' containers, bash's /dev/tcp in the infrastructure
ones (no Python there). NetworkPolicy acts per pod, not per container: a service's app
container and its sidecar share one network namespace, so "the sidecar's path" is the
pod's.

Needs a cluster brought up with `agentia kind up --overlay policies` (or `full`), as
`make test-kind` does; on any other cluster (no kube-router DaemonSet in kube-system) the
module fails, saying so: nothing would enforce the policies it checks.
"""

from __future__ import annotations

import functools
from typing import Any

import httpx
import pytest

from agentia import names
from agentia_tools.kind_render import SIDECAR_HTTP_PORT

from .conftest import NAMESPACE, kubectl, kubectl_json, wait_for

pytestmark = pytest.mark.timeout(300)
DAPR_INTERNAL_GRPC = 50002  # daprd's sidecar-to-sidecar port, the one mesh-sidecars opens
RABBITMQ_DIST = 25672  # Erlang distribution: listening in every RabbitMQ, not for the mesh
DENIED = ("refused", "timeout")
PY_PROBE = """
import socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except socket.timeout:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
except OSError as exc:
    print("error", exc)
"""
SH_PROBE = r"""
out=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$0" "$1" 2>&1); rc=$?
if [ "$rc" -eq 0 ]; then echo connected
elif [ "$rc" -eq 124 ]; then echo timeout
else case "$out" in *refused*) echo refused;; *) echo "error $out";; esac
fi
"""
PYTHON_CONTAINERS = set(names.APP_IDS)  # the service image has python3


@pytest.fixture(scope="module", autouse=True)
def policy_engine() -> None:
    """The policy engine must be applied (`make test-kind` brings the `policies` overlay
    up); then wait for it on every node."""
    engines = kubectl_json(
        "get", "daemonsets", "-n", "kube-system", "-l", "app.kubernetes.io/name=kube-router"
    )["items"]
    if not engines:
        pytest.fail(
            "the cluster runs neither the `policies` nor the `full` overlay (no kube-router "
            "DaemonSet in kube-system), so no policy is enforced: run `make test-kind` "
            "(or `agentia kind up --overlay policies`) first"
        )
    policies = kubectl_json("get", "networkpolicies", "-n", NAMESPACE)["items"]
    assert {p["metadata"]["name"] for p in policies} >= {"default-deny", "mesh-sidecars"}

    def ready() -> bool:
        status = kubectl_json("get", "daemonset", "kube-router", "-n", "kube-system")["status"]
        want = status.get("desiredNumberScheduled", 0)
        return bool(want) and status.get("numberReady") == want

    wait_for(ready, 180, "kube-router Ready on every node")


@functools.cache
def pod(app: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    """A running pod of the workload named ``app`` (label app.kubernetes.io/name)."""
    items = kubectl_json("get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/name={app}")
    running = [p for p in items["items"] if p["status"].get("phase") == "Running"]
    assert running, f"no running pod of {app} in {namespace}"
    return dict(running[0])


def pod_ip(app: str) -> str:
    return str(pod(app)["status"]["podIP"])


@functools.cache
def service_ip(name: str, namespace: str = NAMESPACE) -> str:
    return str(kubectl_json("get", "service", name, "-n", namespace)["spec"]["clusterIP"])


def connect(app: str, host: str, port: int, namespace: str = NAMESPACE) -> str:
    """'connected', 'refused', 'timeout' or 'error …': a TCP connect from ``app``'s pod."""
    name = pod(app, namespace)["metadata"]["name"]
    probe = ["python", "-c", PY_PROBE] if app in PYTHON_CONTAINERS else ["bash", "-c", SH_PROBE]
    out = kubectl("exec", "-n", namespace, name, "-c", app, "--", *probe, host, str(port))
    return out.strip()


def from_node(other_than: str, host: str, port: int) -> str:
    """The same probe from the host network of a node other than ``other_than`` (in the
    kube-router pod there: kube-system is under no policy, its image has bash)."""
    engines = kubectl_json(
        "get", "pods", "-n", "kube-system", "-l", "app.kubernetes.io/name=kube-router"
    )["items"]
    name = next(
        p["metadata"]["name"]
        for p in engines
        if p["spec"]["nodeName"] != other_than and p["status"].get("phase") == "Running"
    )
    args = ["bash", "-c", SH_PROBE, host, str(port)]
    return kubectl("exec", "-n", "kube-system", name, "-c", "kube-router", "--", *args).strip()


def assert_listening(app: str, port: int) -> None:
    """The control of a denial: the target answers on its pod address from inside its own
    pod (never through the node's filters), so a failed connect from elsewhere is the
    policy's doing."""
    assert connect(app, pod_ip(app), port) == "connected", f"{app} is not listening on {port}"


def assert_denied(result: str, what: str) -> None:
    assert result in DENIED, f"{what}: expected refused or timeout, got {result!r}"


# --- default-deny: nothing in or out unless a policy allows it -----------------------------


def test_default_deny_allows_an_app_its_own_sidecar() -> None:
    # Same pod, loopback: no policy applies; this is how every app reaches Dapr.
    assert connect(names.MEMORY, "127.0.0.1", SIDECAR_HTTP_PORT) == "connected"


def test_default_deny_stops_a_service_at_another_services_app_port() -> None:
    port = names.PORTS[names.TOOL_MCP].app
    assert_listening(names.TOOL_MCP, port)
    result = connect(names.MEMORY, pod_ip(names.TOOL_MCP), port)
    assert_denied(result, f"memory -> tool-mcp app port {port} (only via the sidecars)")


# --- allow-dns: every pod may resolve names, and that is all an infra pod may do ------------


def test_allow_dns_lets_an_infra_pod_reach_the_cluster_dns() -> None:
    assert connect("redis", service_ip("kube-dns", "kube-system"), 53) == "connected"


def test_allow_dns_is_the_only_way_out_of_an_infra_pod() -> None:
    api = service_ip("kubernetes", "default")
    assert connect(names.MEMORY, api, 443) == "connected"  # control: the API answers
    assert_denied(connect("redis", api, 443), "redis -> the Kubernetes API")


# --- mesh-sidecars: sidecar to sidecar, Dapr's control plane, stores, collector, 443 --------


def test_mesh_sidecars_reach_each_other_on_daprs_internal_port() -> None:
    target = pod_ip(names.AGENT_RUNNER)
    assert connect(names.MEMORY, target, DAPR_INTERNAL_GRPC) == "connected"


def test_mesh_sidecars_reach_the_dapr_control_plane() -> None:
    sentry = service_ip("dapr-sentry", "dapr-system")
    assert connect(names.MEMORY, sentry, 443) == "connected"


def test_only_mesh_pods_reach_the_dapr_control_plane() -> None:
    sentry = service_ip("dapr-sentry", "dapr-system")
    assert connect(names.TOOL_MCP, sentry, 443) == "connected"  # control
    assert_denied(connect("redis", sentry, 443), "redis -> dapr-sentry")


def test_mesh_sidecars_reach_the_kubernetes_api() -> None:
    assert connect(names.TOOL_MCP, service_ip("kubernetes", "default"), 443) == "connected"


# --- gateway-public: the gateway's app port from anywhere, nothing else of it --------------


def test_gateway_public_serves_the_host_through_the_node_port() -> None:
    from agentia_tools.kind_up import gateway_url

    assert httpx.get(f"{gateway_url()}/livez", timeout=10).status_code == 200


def test_gateway_public_opens_only_the_app_port_to_other_nodes() -> None:
    gateway = pod(names.GATEWAY)
    node, ip = gateway["spec"]["nodeName"], gateway["status"]["podIP"]
    assert from_node(node, ip, names.PORTS[names.GATEWAY].app) == "connected"
    assert_listening(names.GATEWAY, DAPR_INTERNAL_GRPC)
    assert_denied(from_node(node, ip, DAPR_INTERNAL_GRPC), "a node -> gateway's sidecar port")


def test_gateway_public_is_not_a_path_between_services() -> None:
    port = names.PORTS[names.GATEWAY].app
    assert_listening(names.GATEWAY, port)
    assert_denied(connect(names.MEMORY, pod_ip(names.GATEWAY), port), "memory -> gateway app")


# --- infra-from-mesh: PostgreSQL, RabbitMQ and Redis from the mesh's pods, on their ports ---


@pytest.mark.parametrize("app", [names.MEMORY, names.TOOL_MCP])
@pytest.mark.parametrize(
    ("service", "port"), [("postgres", 5432), ("rabbitmq", 5672), ("redis", 6379)]
)
def test_infra_from_mesh_serves_the_mesh(app: str, service: str, port: int) -> None:
    assert connect(app, service_ip(service), port) == "connected"


def test_infra_from_mesh_opens_only_the_service_ports() -> None:
    assert_listening("rabbitmq", RABBITMQ_DIST)
    result = connect(names.MEMORY, pod_ip("rabbitmq"), RABBITMQ_DIST)
    assert_denied(result, f"memory -> rabbitmq:{RABBITMQ_DIST}")


def test_infra_from_mesh_keeps_infra_pods_apart() -> None:
    assert connect(names.MEMORY, service_ip("postgres"), 5432) == "connected"  # control
    assert_denied(connect("redis", service_ip("postgres"), 5432), "redis -> postgres")


# --- otel-from-mesh: the collector takes OTLP from the mesh's pods only ---------------------


def test_otel_from_mesh_takes_the_meshs_traces() -> None:
    assert connect(names.MEMORY, service_ip("otel-collector"), 4317) == "connected"


def test_otel_from_mesh_takes_nothing_from_other_pods() -> None:
    collector = service_ip("otel-collector")
    assert connect(names.TOOL_MCP, collector, 4317) == "connected"  # control
    assert_denied(connect("redis", collector, 4317), "redis -> otel-collector")
