"""Rendering shared by the Kubernetes manifest tests (each combination built once)."""

from __future__ import annotations

import atexit
import functools
import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from agentia_tools import kind
from agentia_tools.kind_render import kind_dir

COMPONENTS = tuple(sorted(p.name for p in (kind_dir() / "components").iterdir() if p.is_dir()))
Doc = dict[str, Any]


def combinations() -> list[tuple[str, ...]]:
    """Every subset of the optional components (the empty one is the dev overlay)."""
    return [c for n in range(len(COMPONENTS) + 1) for c in itertools.combinations(COMPONENTS, n)]


def load(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d]


@functools.cache
def rendered(overlay: str) -> list[Doc]:
    return load(kind.render(overlay))


@functools.cache
def _scratch() -> Path:
    """A copy of deploy/kind/ where combination overlays can be written."""
    root = Path(tempfile.mkdtemp(prefix="agentia-kind-"))
    atexit.register(shutil.rmtree, root, True)
    shutil.copytree(kind_dir(), root / "kind")
    return root / "kind"


@functools.cache
def rendered_combination(components: tuple[str, ...]) -> list[Doc]:
    """base + infra + the given components, as an overlay would have them."""
    name = "combo-" + ("-".join(components) or "none")
    path = _scratch() / "overlays" / name
    path.mkdir(exist_ok=True)
    # The full overlay's kustomization with other components: its namespace transformer
    # leaves the policy engine's kube-system objects where they are.
    overlay: Doc = yaml.safe_load(
        (kind_dir() / "overlays" / "full" / "kustomization.yaml").read_text()
    )
    overlay["components"] = [f"../../components/{c}" for c in components]
    (path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    return load(kind.kustomize_build(path))


def pod_templates(docs: list[Doc]) -> list[tuple[str, Doc]]:
    """(kind/name, pod template) of every workload."""
    out = []
    for d in docs:
        where = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            out.append((where, d["spec"]["template"]))
        elif d["kind"] == "CronJob":
            out.append((where, d["spec"]["jobTemplate"]["spec"]["template"]))
    return out
