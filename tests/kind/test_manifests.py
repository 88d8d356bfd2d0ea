"""The Kubernetes manifests, checked offline: nothing here ran on a real cluster.

Every overlay and every optional component renders with kustomize, every object validates
against the Kubernetes schemas of the pinned version, the Dapr resources equal the local
ones but for the documented differences, and every Deployment is probed, limited, non-root.
"""

from __future__ import annotations

import copy
import functools
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from agentia import kind as kind_mod
from agentia import names
from agentia.kind_render import (
    K8S_SECRET,
    kubernetes_dapr_resources,
    stale_generated,
)
from agentia.paths import repo_root

K8S_VERSION = "1.33.0"  # the kind node image's Kubernetes version
CRD_GROUPS = ("dapr.io/", "keda.sh/")
COMPONENTS = ("hpa", "keda", "network-policies", "otel-collector")


@functools.cache
def rendered(overlay: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(kind_mod.render(overlay)) if d]


def render_dir(path: Path) -> list[dict[str, Any]]:
    import subprocess

    out = subprocess.run(
        [str(kind_mod.ensure_kustomize()), "build", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_generated_manifests_are_up_to_date() -> None:
    assert stale_generated() == [], "run `agentia kind generate` and commit the result"


@pytest.mark.parametrize("overlay", kind_mod.OVERLAYS)
def test_overlay_renders_and_validates(overlay: str) -> None:
    docs = rendered(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "StatefulSet", "Component", "Subscription"} <= kinds
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "agentia", doc["metadata"]
        if doc["apiVersion"].startswith(CRD_GROUPS):
            assert doc["metadata"]["name"] and doc["spec"], doc
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_optional_component_renders_alone(component: str, tmp_path: Path) -> None:
    kind_dir = repo_root() / "deploy" / "kind"
    work = tmp_path / "combo"
    shutil.copytree(kind_dir, work / "kind")
    (work / "kind" / "overlays" / "combo").mkdir()
    (work / "kind" / "overlays" / "combo" / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "agentia",
                "resources": ["../../base", "../../infra"],
                "components": [f"../../components/{component}"],
            }
        )
    )
    docs = render_dir(work / "kind" / "overlays" / "combo")
    for doc in docs:
        if not doc["apiVersion"].startswith(CRD_GROUPS):
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


def test_every_workload_is_probed_limited_and_non_root() -> None:
    for doc in _workloads(rendered("full")):
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for c in pod["containers"]:
            where = f"{doc['metadata']['name']}/{c['name']}"
            assert c.get("readinessProbe") and c.get("livenessProbe"), where
            assert c["resources"]["limits"]["cpu"] and c["resources"]["limits"]["memory"], where
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], where


def test_services_run_read_only_and_ready_only_with_their_sidecar() -> None:
    deployments = {d["metadata"]["name"]: d for d in rendered("dev") if d["kind"] == "Deployment"}
    assert set(names.APP_IDS) <= set(deployments)
    for app_id in names.APP_IDS:
        c = deployments[app_id]["spec"]["template"]["spec"]["containers"][0]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        # /healthz answers 200 only when the sidecar is healthy too.
        assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_dapr_annotations_match_the_local_mesh() -> None:
    for doc in rendered("dev"):
        if doc["kind"] != "Deployment" or doc["metadata"]["name"] not in names.APP_IDS:
            continue
        app_id = doc["metadata"]["name"]
        ann = doc["spec"]["template"]["metadata"]["annotations"]
        assert ann["dapr.io/enabled"] == "true"
        assert ann["dapr.io/app-id"] == app_id
        assert ann["dapr.io/app-port"] == str(names.PORTS[app_id].app)
        assert ann["dapr.io/config"] == names.CONFIGURATION
        container = doc["spec"]["template"]["spec"]["containers"][0]
        assert container["ports"][0]["containerPort"] == names.PORTS[app_id].app
        assert str(names.PORTS[app_id].app) in container["command"]


def _local_docs() -> list[dict[str, Any]]:
    return [
        d
        for p in sorted((repo_root() / "components").rglob("*.yaml"))
        for d in yaml.safe_load_all(p.read_text())
        if d
    ]


def _normalise_for_kubernetes(doc: dict[str, Any]) -> dict[str, Any]:
    """The documented differences, applied to a local resource."""
    doc = copy.deepcopy(doc)
    doc["metadata"]["namespace"] = "agentia"
    if doc["kind"] == "Component" and doc["metadata"]["name"] == names.SECRET_STORE:
        doc["spec"] = {"type": "secretstores.kubernetes", "version": "v1", "metadata": []}
    elif doc["kind"] == "Component":
        for item in doc["spec"]["metadata"]:
            if "secretKeyRef" in item:
                item["secretKeyRef"]["name"] = K8S_SECRET
    if doc["kind"] == "Configuration":
        doc["spec"].pop("nameResolution")
    return doc


def test_kubernetes_dapr_resources_equal_the_local_ones_but_for_addresses() -> None:
    local = [_normalise_for_kubernetes(d) for d in _local_docs()]
    assert kubernetes_dapr_resources() == local
    in_overlay = [d for d in rendered("dev") if d["apiVersion"].startswith("dapr.io/")]
    assert sorted(d["metadata"]["name"] for d in in_overlay) == sorted(
        d["metadata"]["name"] for d in local
    )


def test_unknown_overlay_is_refused() -> None:
    with pytest.raises(kind_mod.KindError, match="unknown overlay"):
        kind_mod.render("prod")
