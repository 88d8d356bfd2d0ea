"""The policy engine (components/policy-engine: kube-router's network-policy controller),
checked offline: it renders in the full overlay beside the policies it enforces, runs the
image `agentia kind build` plans, may read what its controller watches, and is started
as a policy controller only. Nothing here runs a cluster or Docker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agentia_tools import kind_build
from agentia_tools.kind_gobuild import KUBE_ROUTER_VERSION, TOOLS
from agentia_tools.kind_images import images_dir

from .conftest import rendered

Doc = dict[str, Any]
HEALTH_PORT = 20244  # kube-router's --health-port default, set explicitly in the manifest


def _one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def _daemonset() -> Doc:
    return _one(rendered("full"), "DaemonSet", "kube-router")


def _container() -> Doc:
    container: Doc = _daemonset()["spec"]["template"]["spec"]["containers"][0]
    return container


def test_the_full_overlay_enforces_its_policies_and_dev_has_neither() -> None:
    full = rendered("full")
    assert any(d["kind"] == "NetworkPolicy" for d in full)
    assert _daemonset()["metadata"]["namespace"] == "kube-system"
    dev = rendered("dev")
    assert not [d for d in dev if d["kind"] in ("NetworkPolicy", "DaemonSet", "ClusterRole")]


def test_the_full_overlay_keeps_everything_else_in_the_agentia_namespace() -> None:
    elsewhere = {
        (d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"))
        for d in rendered("full")
        if d["metadata"].get("namespace") != "agentia" and d["kind"] != "Namespace"
    }
    assert elsewhere == {
        ("ServiceAccount", "kube-router", "kube-system"),
        ("DaemonSet", "kube-router", "kube-system"),
        ("ClusterRole", "agentia-kube-router", None),
        ("ClusterRoleBinding", "agentia-kube-router", None),
        # the broker's volume on the folder both workers mount (cluster-scoped objects)
        ("StorageClass", "agentia-shared", None),
        ("PersistentVolume", "agentia-rabbitmq-data", None),
    }


def test_its_image_is_the_one_kind_build_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    image = _container()["image"]
    assert image == kind_build.policy_engine_image()
    assert image.endswith(f":{KUBE_ROUTER_VERSION}")
    built: dict[str, Any] = {}

    def fake_dockerfile_image(name: str, base: str, progress: Any, **kw: Any) -> str:
        built.update(name=name, base=base, **kw)
        return "agentia.local/kube-router:abc"

    monkeypatch.setattr(kind_build, "pullable", lambda ref: False)
    monkeypatch.setattr(kind_build, "go_build", lambda tool, progress: Path("/cache") / tool.name)
    monkeypatch.setattr(kind_build, "debian_base", lambda suite, progress: f"debian:{suite}")
    monkeypatch.setattr(kind_build, "dockerfile_image", fake_dockerfile_image)
    plan = kind_build.Plan()
    kind_build._policy_engine(lambda _: None, plan)
    assert plan.every_node == [image] and image not in plan.load + plan.beyond_dev
    assert built["name"] == "kube-router" and built["tags"] == [image]
    assert built["base"] == f"debian:{kind_build.POLICY_ENGINE_SUITE}"
    assert built["files"]["kube-router"] == Path("/cache/kube-router/kube-router")
    assert built["files"]["iptables-wrapper"].is_file()


def test_a_pullable_image_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kind_build, "pullable", lambda ref: True)
    monkeypatch.setattr(kind_build, "go_build", pytest.fail)
    plan = kind_build.Plan()
    kind_build._policy_engine(lambda _: None, plan)
    assert plan.every_node == [kind_build.policy_engine_image()]


def test_the_binary_is_built_static_from_the_pinned_module() -> None:
    tool = TOOLS["kube-router"]
    assert tool.version == KUBE_ROUTER_VERSION and not tool.cgo  # CGO off: a static binary
    assert set(tool.programs) == {"kube-router"}
    assert f"pkg/version.Version={KUBE_ROUTER_VERSION}" in " ".join(tool.ldflags)


def test_the_image_recipe_has_iptables_ipset_and_the_binary() -> None:
    dockerfile = (images_dir() / "kube-router" / "Dockerfile").read_text()
    install = re.search(r"apt-get install[^&]*", dockerfile, re.S)
    assert install and {"iptables", "ipset"} <= set(install.group(0).split())
    assert "COPY kube-router /usr/local/bin/kube-router" in dockerfile
    assert _container()["command"] == ["/usr/local/bin/kube-router"]


def test_its_rbac_covers_what_the_controller_watches() -> None:
    docs = rendered("full")
    daemonset = _daemonset()
    account = daemonset["spec"]["template"]["spec"]["serviceAccountName"]
    assert _one(docs, "ServiceAccount", account)["metadata"]["namespace"] == "kube-system"
    binding = _one(docs, "ClusterRoleBinding", "agentia-kube-router")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": "kube-system"}
    ]
    role = _one(docs, "ClusterRole", binding["roleRef"]["name"])
    allowed = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = {
        ("", "pods"),
        ("", "namespaces"),
        ("", "nodes"),
        ("", "services"),
        ("", "endpoints"),
        ("networking.k8s.io", "networkpolicies"),
        ("discovery.k8s.io", "endpointslices"),
    }
    for group, resource in needed:
        for verb in ("list", "watch"):
            assert (group, resource, verb) in allowed, (group, resource, verb)
    assert ("", "nodes", "get") in allowed  # it reads its own node at start
    # Read-only: the firewall writes to the node's kernel, never to the API.
    assert {verb for _, _, verb in allowed} == {"get", "list", "watch"}


def test_it_runs_as_a_policy_controller_only_beside_the_pod_network() -> None:
    args = _container()["args"]
    for flag in (
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        "--bgp-graceful-restart=false",
        "--enable-cni=false",
        "--hostname-override=$(NODE_NAME)",
        f"--health-port={HEALTH_PORT}",
    ):
        assert flag in args, flag
    assert not [a for a in args if a.startswith(("--kubeconfig", "--master"))]  # in-cluster
    env = {e["name"]: e for e in _container()["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_it_runs_on_every_node_on_the_host_network_with_the_kernels_tables() -> None:
    spec = _daemonset()["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    assert {"operator": "Exists"} in spec["tolerations"]  # every taint: the control plane too
    container = _container()
    assert container["securityContext"]["privileged"] is True
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts["/lib/modules"]["readOnly"] is True
    assert volumes[mounts["/lib/modules"]["name"]]["hostPath"]["path"] == "/lib/modules"
    lock = volumes[mounts["/run/xtables.lock"]["name"]]["hostPath"]
    assert lock == {"path": "/run/xtables.lock", "type": "FileOrCreate"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz" and ports[get["port"]] == HEALTH_PORT, probe
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound])
