"""The Kubernetes manifests, checked offline: nothing here ran on a real cluster.

Every overlay and every combination of the optional components renders with kustomize;
every object validates strictly against the Kubernetes JSON schemas of the kind node's
version (custom resources: against their CRDs, see test_dapr.py for Dapr's); every
workload meets the "restricted" Pod Security Standard, is probed and limited; every
Secret the manifests name is one `agentia kind up` creates.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes_validate
import pytest
import yaml

from agentia import names
from agentia.serve import service_command
from agentia_tools import kind
from agentia_tools.kind_config import DEFAULT_GATEWAY_PORT
from agentia_tools.kind_render import GATEWAY_NODE_PORT, NAMESPACE, TOKEN_KEY, UID, kind_dir
from agentia_tools.kind_secrets import INFRA_HOSTS, secret_manifests

from .conftest import combinations, pod_templates, rendered, rendered_combination
from .upstream import crd_validators

Doc = dict[str, Any]
CLUSTER = yaml.safe_load((kind_dir() / "cluster.yaml").read_text())
NODE_IMAGE = CLUSTER["nodes"][0]["image"]
K8S_VERSION = NODE_IMAGE.split(":v", 1)[1].split("@", 1)[0]  # kindest/node:v1.37.0@sha256:…
PSS_VOLUMES = {  # the volume types the "restricted" Pod Security Standard allows
    *("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral"),
    *("persistentVolumeClaim", "projected", "secret"),
}


def _validate(doc: Doc) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key in crd_validators():
        errors = sorted(crd_validators()[key].iter_errors(doc), key=str)
        assert not errors, f"{key} {doc['metadata']['name']}: {errors[0].message}"
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


_seen: set[str] = set()


def _validate_once(doc: Doc) -> None:
    """Validate each distinct object once; Dapr's resources are test_dapr.py's concern."""
    fingerprint = json.dumps(doc, sort_keys=True)
    if fingerprint not in _seen and not doc["apiVersion"].startswith("dapr.io/"):
        _validate(doc)
        _seen.add(fingerprint)


def test_schemas_of_the_kind_node_version_are_shipped() -> None:
    assert all(n["image"] == NODE_IMAGE for n in CLUSTER["nodes"])
    assert K8S_VERSION in kubernetes_validate.utils.all_versions(), K8S_VERSION


# The Namespace, and the broker's volume on the folder both workers mount.
CLUSTER_SCOPED = ("Namespace", "StorageClass", "PersistentVolume")


@pytest.mark.parametrize("overlay", kind.OVERLAYS)
def test_overlay_renders_and_validates(overlay: str) -> None:
    docs = rendered(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "Deployment", "Service", "StatefulSet", "CronJob", "Component"} <= kinds
    for doc in docs:
        if _policy_engine(doc):  # a node agent: kube-system, and cluster-wide read access
            assert doc["metadata"].get("namespace") in ("kube-system", None), doc["metadata"]
        elif doc["kind"] in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") is None, doc["metadata"]
        else:
            assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]
        _validate_once(doc)


@pytest.mark.parametrize("components", combinations(), ids=lambda c: "+".join(c) or "none")
def test_every_component_combination_renders_and_validates(components: tuple[str, ...]) -> None:
    docs = rendered_combination(components)
    ids = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(ids) == len(set(ids)), "duplicate objects"
    for doc in docs:
        _validate_once(doc)


def test_a_misspelt_field_is_caught_by_the_kubernetes_schemas() -> None:
    bad = copy.deepcopy(next(d for d in rendered("dev") if d["kind"] == "Deployment"))
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        _validate(bad)


def test_full_overlay_is_every_component() -> None:
    """Every component but the local model, which needs `agentia model build` (its own overlay)."""
    full = {(d["kind"], d["metadata"]["name"]) for d in rendered("full")}
    every = tuple(c for c in combinations()[-1] if c != "local-model")
    combo = {(d["kind"], d["metadata"]["name"]) for d in rendered_combination(every)}
    assert full == combo


def _policy_engine(doc: Doc) -> bool:
    """An object of components/policy-engine (kube-router, outside the agentia namespace)."""
    labels = doc.get("metadata", {}).get("labels") or {}
    return labels.get("app.kubernetes.io/component") == "policy-engine"


def _containers(pod: Doc) -> list[Doc]:
    return [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]


@pytest.mark.parametrize("overlay", kind.OVERLAYS)
def test_every_pod_meets_the_restricted_pod_security_standard(overlay: str) -> None:
    for where, pod in pod_templates(rendered(overlay)):
        if _policy_engine(pod):  # privileged on the host network by necessity, in kube-system
            assert where == "DaemonSet/kube-router", where
            continue
        spec = pod["spec"]
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), where
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec["securityContext"].get("runAsUser", 1) != 0, where
        for volume in spec.get("volumes", []):
            assert set(volume) - {"name"} <= PSS_VOLUMES, f"{where}: {volume}"
        for c in _containers(pod):
            sc, at = c["securityContext"], f"{where}/{c['name']}"
            assert sc["allowPrivilegeEscalation"] is False, at
            assert sc["capabilities"]["drop"] == ["ALL"], at
            assert not sc.get("privileged") and not sc["capabilities"].get("add"), at
            assert sc.get("runAsUser", 1) != 0, at


@pytest.mark.parametrize("overlay", kind.OVERLAYS)
def test_every_container_has_requests_and_limits_and_long_running_ones_probes(
    overlay: str,
) -> None:
    for where, pod in pod_templates(rendered(overlay)):
        for c in _containers(pod):
            at = f"{where}/{c['name']}"
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][bound]), at
            if not where.startswith("CronJob/"):
                assert c.get("readinessProbe") and c.get("livenessProbe"), at


def _service_deployments() -> dict[str, Doc]:
    return {
        d["metadata"]["name"]: d
        for d in rendered("dev")
        if d["kind"] == "Deployment" and d["metadata"]["name"] in names.APP_IDS
    }


def test_each_service_has_a_deployment_service_and_account() -> None:
    docs = rendered("dev")
    for kind_ in ("Deployment", "Service", "ServiceAccount"):
        found = {d["metadata"]["name"] for d in docs if d["kind"] == kind_}
        assert set(names.APP_IDS) <= found, kind_


def test_services_run_the_local_command_read_only_and_ready_only_with_their_sidecar() -> None:
    for app_id, dep in _service_deployments().items():
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        assert c["command"] == service_command(app_id)
        assert c["ports"] == [{"name": "http", "containerPort": names.PORTS[app_id].app}]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["runAsUser"] == UID
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}} in pod["volumes"]
        # /healthz is 200 only when the sidecar answers too; /livez is the process alone.
        assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
        assert pod["automountServiceAccountToken"] is False
        env = {e["name"]: e for e in c["env"]}
        assert env["APP_ID"]["value"] == app_id
        assert env["APP_PORT"]["value"] == str(names.PORTS[app_id].app)


def test_only_agent_runner_may_call_the_tools_on_kind() -> None:
    allowed = {
        app_id: {
            e["name"]: e.get("value")
            for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
        }.get("AGENTIA_TOOL_ALLOWED_CALLERS")
        for app_id, dep in _service_deployments().items()
    }
    assert allowed[names.TOOL_MCP] == names.AGENT_RUNNER
    assert all(v is None for a, v in allowed.items() if a != names.TOOL_MCP)


def test_the_gateway_is_published_where_the_cluster_maps_the_host_port() -> None:
    public = next(d for d in rendered("dev") if d["metadata"]["name"] == "gateway-public")
    assert public["spec"]["type"] == "NodePort"
    assert public["spec"]["ports"][0]["nodePort"] == GATEWAY_NODE_PORT
    mappings = CLUSTER["nodes"][0]["extraPortMappings"]
    # Not the local mesh's gateway port: both run side by side on one machine.
    assert {"containerPort": GATEWAY_NODE_PORT, "hostPort": DEFAULT_GATEWAY_PORT} in [
        {k: m[k] for k in ("containerPort", "hostPort")} for m in mappings
    ]
    assert names.PORTS[names.GATEWAY].app != DEFAULT_GATEWAY_PORT
    assert kind.GATEWAY_URL.endswith(f":{DEFAULT_GATEWAY_PORT}")


def _secret_refs(docs: list[Doc]) -> set[tuple[str, str]]:
    """Every (Secret, key) the manifests read, however they read it."""
    refs: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("secretKeyRef")
            if isinstance(ref, dict) and "name" in ref and "key" in ref:
                refs.add((ref["name"], ref["key"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for doc in docs:
        walk(doc)
        if doc["kind"] == "TriggerAuthentication":
            refs |= {(r["name"], r["key"]) for r in doc["spec"]["secretTargetRef"]}
    for _, pod in pod_templates(docs):
        ann = pod["metadata"].get("annotations", {})
        for key in ("dapr.io/api-token-secret", "dapr.io/app-token-secret"):
            if key in ann:
                refs.add((ann[key], TOKEN_KEY))
    return refs


def _created_secrets() -> list[Doc]:
    passwords = {k: f"pw-{k}/+:@" for k in kind.INFRA}
    tokens = {names.SECRET_DAPR_API_TOKEN: "t1", names.SECRET_APP_API_TOKEN: "t2"}
    return secret_manifests(passwords, tokens, openai_api_key="sk-test")


def test_every_secret_the_manifests_read_is_one_kind_up_creates() -> None:
    created = {(s["metadata"]["name"], k) for s in _created_secrets() for k in s["stringData"]}
    missing = _secret_refs(rendered("full")) - created
    assert not missing, missing


def test_services_find_their_secrets_under_the_local_names() -> None:
    # Dapr's kubernetes secret store answers secret `x` from the Secret named `x`.
    created = {s["metadata"]["name"]: s["stringData"] for s in _created_secrets()}
    for name in (
        names.SECRET_POSTGRES_URL,
        names.SECRET_POSTGRES_DSN,
        names.SECRET_RABBITMQ_URL,
        names.SECRET_REDIS_HOST,
        names.SECRET_REDIS_PASSWORD,
        names.SECRET_OPENAI_API_KEY,
    ):
        assert list(created[name]) == [name]


def test_secrets_validate_and_point_at_the_infrastructure_services() -> None:
    for secret in _created_secrets():
        _validate(secret)
    services = {
        d["metadata"]["name"]: d["spec"]["ports"][0]["port"]
        for d in rendered("dev")
        if d["kind"] == "Service"
        and d["metadata"]["labels"]["app.kubernetes.io/component"] == "infra"
    }
    assert set(services) == set(INFRA_HOSTS) == set(kind.INFRA)
    text = json.dumps([s["stringData"] for s in _created_secrets()])
    for name, port in services.items():
        assert f"{name}.{NAMESPACE}.svc.cluster.local:{port}" in text or (
            f"host={name}.{NAMESPACE}.svc.cluster.local port={port}" in text
        ), name
    assert "pw-postgres%2F%2B%3A%40" in text  # passwords are URL-quoted in URLs


def test_network_policies_allow_the_infrastructure_ports() -> None:
    docs = rendered("full")
    infra_ports = {
        p["containerPort"]
        for _, pod in pod_templates(docs)
        if pod["metadata"]["labels"].get("app.kubernetes.io/component") == "infra"
        for c in pod["spec"]["containers"]
        for p in c["ports"]
    }
    policy = next(d for d in docs if d["metadata"]["name"] == "infra-from-mesh")
    allowed = {p["port"] for p in policy["spec"]["ingress"][0]["ports"]}
    assert allowed == infra_ports
