"""`agentia kind build`: everything the cluster needs, from the registries this machine
reaches, cached under ``~/.cache/agentia/kind/`` (``$AGENTIA_KIND_CACHE``).

Where the normal images can be pulled (a user with internet), they are used as they are
and nothing is built for them; otherwise the project builds them: the kind node image
(kind_node.py), Dapr's images (kind_dapr_build.py), the infrastructure images and the
Python base of the service image (Debian packages), the optional components' images (the
OpenTelemetry collector; kube-router, the policy engine), and kind, kubectl and Helm when they
are not on PATH (Go modules). Every step says what it does and how long it took; a second
run finds everything cached and takes seconds.
"""

from __future__ import annotations

import functools
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

import yaml

from agentia.paths import repo_root
from agentia_tools import kind_dapr_build, kind_engine, kind_node, model_build
from agentia_tools.kind_gobuild import TOOLS, go_build
from agentia_tools.kind_images import (
    binary_image,
    debian_base,
    dockerfile_image,
    images_dir,
    pullable,
)
from agentia_tools.kind_render import kind_dir
from agentia_tools.runtime.daprbin import DAPR_VERSION

Progress = Callable[[str], None]
# The infrastructure StatefulSets' images: what each is built from where it can't be pulled.
INFRA_RECIPES: Final = {"postgres": "trixie", "rabbitmq": "bookworm", "redis": "bookworm"}
PYTHON_BASE_SUITE: Final = "bookworm"  # python3 3.11, as pyproject.toml and the Dockerfile
CLUSTER_TOOLS: Final = ("kind", "kubectl", "helm")
OTEL_UID: Final = 10001  # the official collector image's user (collector.yaml runs as it)
POLICY_ENGINE_SUITE: Final = "bookworm"  # iptables 1.8.9 (legacy and nft), ipset 7.17
# The iptables backend chooser the kube-proxy image uses, shared by the policy engine's.
IPTABLES_WRAPPER: Final = images_dir() / "kube-proxy" / "iptables-wrapper"


@dataclass
class Plan:
    """What `agentia kind up` uses: upstream where reachable, built here otherwise."""

    node_image: str | None = None  # None: the image cluster.yaml pins (pulled)
    python_image: str | None = None  # None: the Dockerfile's default base
    load: list[str] = field(default_factory=list)  # images to load into the nodes
    dapr_chart: Path | None = None  # None: Dapr's Helm repository
    dapr_values: list[str] = field(default_factory=list)
    # The daprd build the sidecars run, when built here (a new one rolls the service pods).
    sidecar_build: str | None = None
    beyond_dev: list[str] = field(default_factory=list)  # images `policies` and `full` run
    # The policy engine's (overlays `policies` and `full`), loaded on the control plane too.
    every_node: list[str] = field(default_factory=list)
    # The local model server's (overlay `local-model`), when `agentia model build` has run.
    model_server: str | None = None
    tools: dict[str, Path] = field(default_factory=dict)  # tool -> binary
    notes: list[str] = field(default_factory=list)  # what was chosen, for the user


T = TypeVar("T")


class Step:
    """Times a step of the build and prints it, with its duration, to the progress output."""

    def __init__(self, progress: Progress, timings: dict[str, float]) -> None:
        self.progress, self.timings = progress, timings

    def run(self, name: str, fn: Callable[[], T]) -> T:
        self.progress(f"→ {name}")
        started = time.monotonic()
        result = fn()
        took = time.monotonic() - started
        self.timings[name] = took
        self.progress(f"  ✓ {name} ({took:.0f}s)")
        return result


def _cluster_images() -> list[str]:
    cluster = yaml.safe_load((kind_dir() / "cluster.yaml").read_text())
    return sorted({n["image"] for n in cluster["nodes"] if n.get("image")})


def infra_images() -> dict[str, str]:
    """StatefulSet name -> the image its manifest runs (deploy/kind/infra/)."""
    out = {}
    for path in sorted((kind_dir() / "infra").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "StatefulSet":
                containers = doc["spec"]["template"]["spec"]["containers"]
                out[doc["metadata"]["name"]] = containers[0]["image"]
    return out


def component_image(component: str, file: str, kind: str) -> str:
    """The image the first workload of ``kind`` in an optional component runs."""
    path = kind_dir() / "components" / component / file
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == kind:
            return str(doc["spec"]["template"]["spec"]["containers"][0]["image"])
    raise RuntimeError(f"{path} has no {kind}")


def otel_collector_image() -> str:
    """The image the optional otel-collector component runs."""
    return component_image("otel-collector", "collector.yaml", "Deployment")


def policy_engine_image() -> str:
    """The image the optional policy-engine component (kube-router) runs."""
    return component_image("policy-engine", "kube-router.yaml", "DaemonSet")


def _otel_collector(progress: Progress, plan: Plan) -> None:
    ref = otel_collector_image()
    if pullable(ref):
        plan.notes.append(f"otel-collector: {ref} (pulled)")
    else:
        tool = TOOLS["otelcol"]
        built = binary_image(
            "otelcol",
            {"otelcol": go_build(tool, progress) / "otelcol"},
            entrypoint=["/otelcol"],
            user=OTEL_UID,
            tags=[ref],
        )
        plan.notes.append(f"otel-collector: {ref} built here from Go modules ({built})")
    plan.beyond_dev.append(ref)


def _policy_engine(progress: Progress, plan: Plan) -> None:
    """kube-router's policy controller: Debian's iptables and ipset, the Go-built binary."""
    ref = policy_engine_image()
    if pullable(ref):
        plan.notes.append(f"policy engine: {ref} (pulled)")
    else:
        binary = go_build(TOOLS["kube-router"], progress) / "kube-router"
        files = {"kube-router": binary, "iptables-wrapper": IPTABLES_WRAPPER}
        base = debian_base(POLICY_ENGINE_SUITE, progress)
        built = dockerfile_image("kube-router", base, progress, files=files, tags=[ref])
        plan.notes.append(f"policy engine: {ref} built here from Debian and Go modules ({built})")
    # A DaemonSet on every node, the control plane too: loaded there as well.
    plan.every_node.append(ref)


def dockerfile_python_default() -> str:
    for line in (repo_root() / "deploy" / "docker" / "Dockerfile").read_text().splitlines():
        if line.startswith("ARG PYTHON_IMAGE="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError("deploy/docker/Dockerfile has no ARG PYTHON_IMAGE=")


def tool_path(name: str, progress: Progress, *, build: bool = True) -> Path:
    """A cluster tool: the one built here (kubectl: matches the node's Kubernetes), else the
    one on PATH, else built now from its Go module."""
    tool = TOOLS["kubernetes" if name == "kubectl" else name]
    cached = tool.out_dir() / name
    if cached.is_file():
        return cached
    found = shutil.which(name)
    if found and name != "kubectl":
        return Path(found)
    if not build:
        if found:
            return Path(found)
        raise kind_engine.EngineError(
            f"not found on PATH: {name} (nor built here: run `agentia kind build`)"
        )
    return go_build(tool, progress) / name


def _python_base(progress: Progress) -> str | None:
    default = dockerfile_python_default()
    if pullable(default):
        return None
    base = debian_base(PYTHON_BASE_SUITE, progress)
    return dockerfile_image("python", base, progress)


def _infra(progress: Progress, plan: Plan) -> None:
    for name, ref in infra_images().items():
        if pullable(ref):
            plan.notes.append(f"{name}: {ref} (pulled)")
        else:
            suite = INFRA_RECIPES[name]
            built = dockerfile_image(name, debian_base(suite, progress), progress, tags=[ref])
            plan.notes.append(f"{name}: {ref} built here from Debian {suite} ({built})")
        plan.load.append(ref)


def _dapr(progress: Progress, plan: Plan) -> None:
    images = kind_dapr_build.images(progress)
    plan.load += sorted(images.values())
    plan.dapr_chart = kind_dapr_build.chart_dir(progress)
    plan.dapr_values = kind_dapr_build.chart_values()
    plan.sidecar_build = kind_dapr_build.TOOL.out_dir().name
    plan.notes.append(f"Dapr: chart and images built from github.com/dapr/dapr ({plan.dapr_chart})")


MODEL_SERVER_IMAGE: Final = "agentia/model-server:dev"  # components/local-model's


def _model_server(progress: Progress, plan: Plan) -> None:
    """llama-server and SmolLM2-135M from the local model cache, on Debian bookworm."""
    try:
        model = model_build.find()
    except model_build.ModelBuildError:
        plan.notes.append("local model: not built (`agentia model build`); overlay local-model off")
        return
    files = {"llama-server": model.server, "model.gguf": model.gguf}
    files["chat-template.jinja"] = model.template
    base = debian_base("bookworm", progress)
    built = dockerfile_image("model-server", base, progress, files=files, tags=[MODEL_SERVER_IMAGE])
    plan.model_server = MODEL_SERVER_IMAGE
    plan.notes.append(f"local model: {MODEL_SERVER_IMAGE} built here ({built})")


def dapr_repo_reachable() -> bool:
    """Dapr's published images are pullable (then its Helm repository is used too)."""
    return pullable(f"ghcr.io/dapr/daprd:{DAPR_VERSION}")


def build(progress: Progress, timings: dict[str, float] | None = None) -> Plan:
    """Make (or find cached) everything the cluster needs; what `up` will use."""
    timings = {} if timings is None else timings
    step = Step(progress, timings)
    plan = Plan()
    step.run("host packages", lambda: kind_engine.ensure_host_packages(progress))
    step.run("Docker engine", lambda: kind_engine.ensure_engine(progress))
    for name in CLUSTER_TOOLS:
        plan.tools[name] = step.run(name, functools.partial(tool_path, name, progress))
    if all(pullable(ref) for ref in _cluster_images()):
        plan.notes.append(f"node image: {', '.join(_cluster_images())} (pulled)")
    else:
        plan.node_image = step.run("node image", lambda: kind_node.node_image(progress))
        plan.notes.append(f"node image: {plan.node_image} (built here)")
        error = kind_engine.privileged_probe(plan.node_image)
        if error:
            raise kind_engine.EngineError(kind_engine.explain_caps_failure(error))
    plan.python_image = step.run("Python base", lambda: _python_base(progress))
    step.run("infrastructure images", lambda: _infra(progress, plan))
    step.run("OpenTelemetry collector", lambda: _otel_collector(progress, plan))
    step.run("policy engine (kube-router)", lambda: _policy_engine(progress, plan))
    step.run("local model server", lambda: _model_server(progress, plan))
    if dapr_repo_reachable():
        plan.notes.append("Dapr: its Helm repository and published images")
    else:
        step.run("Dapr images and chart", lambda: _dapr(progress, plan))
    return plan
