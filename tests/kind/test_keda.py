"""KEDA without its registry or chart: its own kustomization renders, offline, into the
objects `kind up --overlay full` applies, every image one built here and never pulled."""

from __future__ import annotations

from typing import Any

import yaml

from agentia_tools import kind, kind_keda
from agentia_tools.kind_gobuild import TOOLS

BUILT = {upstream: f"agentia.local/{prog}:test" for upstream, prog in kind_keda.IMAGES.items()}


def rendered() -> list[dict[str, Any]]:
    text = kind_keda.manifests(kind.kustomize_build, BUILT, lambda _: None)
    return [d for d in yaml.safe_load_all(text) if d]


def test_keda_renders_its_three_deployments_with_the_images_built_here() -> None:
    docs = rendered()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == set(kind_keda.DEPLOYMENTS)
    for deployment in deployments.values():
        assert deployment["metadata"]["namespace"] == kind_keda.NAMESPACE
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["image"] in BUILT.values()
            assert container["imagePullPolicy"] == "IfNotPresent"
            # The image runs the program where upstream's Deployment calls it.
            program = container["image"].split("/")[1].split(":")[0]
            assert container["command"][0] == f"/{program}"
    kinds = {d["kind"] for d in docs}
    assert {"CustomResourceDefinition", "APIService", "ValidatingWebhookConfiguration"} <= kinds
    crds = {d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert {"scaledobjects.keda.sh", "triggerauthentications.keda.sh"} <= crds


def test_the_full_overlay_scales_agent_runner_with_objects_keda_defines() -> None:
    crds = {
        (d["spec"]["group"], d["spec"]["names"]["kind"])
        for d in rendered()
        if d["kind"] == "CustomResourceDefinition"
    }
    used = {
        (d["apiVersion"].split("/")[0], d["kind"])
        for d in yaml.safe_load_all(kind.render("full"))
        if d and d["apiVersion"].startswith("keda.sh/")
    }
    assert used and used <= crds


def test_keda_is_built_from_the_version_the_docs_name() -> None:
    tool = TOOLS["keda"]
    assert tool.version == f"v{kind.KEDA_VERSION}"
    assert set(tool.programs) == set(kind_keda.IMAGES.values())
