"""The Dapr resources for Kubernetes, generated from the one copy in ``components/``.

Each file under ``components/`` becomes the file of the same relative path under
``deploy/kind/generated/dapr/``, with only these differences (:data:`DIFFERENCES`):

- the secret store ``secrets`` is ``secretstores.kubernetes`` instead of a local JSON file;
- each ``secretKeyRef`` names the Kubernetes Secret that holds the value, with its key;
- the Configuration has no ``nameResolution`` block (daprd then resolves app ids through
  the cluster's DNS, its default in Kubernetes mode).

Dapr's Kubernetes secret store reads the Secret *named* like the requested secret and
returns its keys; the local file store with ``nestedSeparator`` answers the same shape.
So each Kubernetes Secret is named after the local secret and holds one key of the same
name (:func:`kubernetes_secret_for`), and a service asking its sidecar for
``postgres-url`` gets the same answer on a laptop and on a cluster.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Final

import yaml

from agentia import names
from agentia.paths import repo_root

KUBERNETES_SECRET_STORE: Final = "secretstores.kubernetes"  # noqa: S105 - a component type
DIFFERENCES: Final = (
    f"the `{names.SECRET_STORE}` secret store is `{KUBERNETES_SECRET_STORE}` (same name)",
    "every `secretKeyRef` names the Kubernetes Secret holding the value, with its key",
    "the Configuration has no `nameResolution` (the cluster's DNS resolves app ids)",
    "the Configuration exports no traces to the local trace store (the `otel-collector` "
    "component adds its own exporter)",
)
Doc = dict[str, Any]


def components_dir() -> Path:
    return repo_root() / "components"


def kubernetes_secret_for(name: str, key: str) -> tuple[str, str]:
    """The Kubernetes Secret (name, key) that holds the local secret ``name``/``key``."""
    return name, key


def load_local() -> dict[str, list[Doc]]:
    """components/**/*.yaml by path relative to components/, each as its documents."""
    out: dict[str, list[Doc]] = {}
    for path in sorted(components_dir().rglob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        out[path.relative_to(components_dir()).as_posix()] = docs
    return out


def to_kubernetes(doc: Doc) -> Doc:
    """One Dapr resource as it must be on Kubernetes: the local one but for DIFFERENCES."""
    doc = copy.deepcopy(doc)
    kind = doc.get("kind")
    spec = doc.get("spec", {})
    if kind == "Component" and doc["metadata"]["name"] == names.SECRET_STORE:
        spec["type"] = KUBERNETES_SECRET_STORE
        spec["metadata"] = []  # namespace: the pod's own (daprd's NAMESPACE variable)
    elif kind == "Component":
        for item in spec.get("metadata", []):
            ref = item.get("secretKeyRef")
            if ref:
                name, key = kubernetes_secret_for(ref["name"], ref.get("key", ref["name"]))
                item["secretKeyRef"] = {"name": name, "key": key}
    elif kind == "Configuration":
        spec.pop("nameResolution", None)
        spec.get("tracing", {}).pop("otel", None)
    return doc


def kubernetes_dapr_resources() -> dict[str, list[Doc]]:
    """Relative path -> documents, for every file in components/."""
    return {rel: [to_kubernetes(d) for d in docs] for rel, docs in load_local().items()}
