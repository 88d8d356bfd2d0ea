"""KEDA on the kind cluster without its registry or its chart: the operator, the metrics API
server and the admission webhooks built here from their Go module
(`github.com/kedacore/keda/v2`), and their manifests rendered from the same module's
`config/` kustomization (CRDs, RBAC, the three Deployments, the APIService, the webhook),
with the images swapped for the ones built here. The operator makes and rotates its own
certificates (``--enable-cert-rotation``), so nothing else is needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

import yaml

from agentia_tools.kind_gobuild import TOOLS, go_build, module_dir
from agentia_tools.kind_images import NONROOT, binary_image

Progress = Callable[[str], None]

NAMESPACE: Final = "keda"
# Upstream image -> the program built here that it runs (at /<program>, as upstream's do).
IMAGES: Final = {
    "ghcr.io/kedacore/keda": "keda",
    "ghcr.io/kedacore/keda-metrics-apiserver": "keda-adapter",
    "ghcr.io/kedacore/keda-admission-webhooks": "keda-admission-webhooks",
}
DEPLOYMENTS: Final = ("keda-operator", "keda-metrics-apiserver", "keda-admission")


def images(progress: Progress) -> dict[str, str]:
    """Upstream image name -> the image built here (``agentia.local/…``), built once."""
    built = go_build(TOOLS["keda"], progress)
    out = {}
    for upstream, program in IMAGES.items():
        out[upstream] = binary_image(
            program,
            {program: built / program},
            entrypoint=[f"/{program}"],
            user=NONROOT,  # the Deployments ask for runAsNonRoot with no runAsUser
        )
    return out


def manifests(build: Callable[[Path], str], built: dict[str, str], progress: Progress) -> str:
    """KEDA's own `config/default` rendered by ``build`` (kind.kustomize_build), with the
    images built here and never pulled."""
    source = module_dir(TOOLS["keda"]) / "config" / "default"
    docs = [d for d in yaml.safe_load_all(build(source)) if d]
    for doc in docs:
        if doc.get("kind") != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            name = str(container["image"]).rsplit(":", 1)[0]
            if name not in built:
                raise RuntimeError(f"KEDA's config runs {container['image']}, not built here")
            container["image"] = built[name]
            container["imagePullPolicy"] = "IfNotPresent"  # loaded into the nodes by kind
    progress(f"KEDA manifests: {len(docs)} objects from {source}")
    return yaml.safe_dump_all(docs, sort_keys=False)
