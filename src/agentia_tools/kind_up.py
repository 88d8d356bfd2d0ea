"""The steps of `agentia kind up` and `agentia kind images` (the CLI is in kind.py).

Everything the cluster runs comes from `agentia kind build`'s plan (kind_build.py): the
normal images where they can be pulled, the ones built here otherwise. Every kubectl and
helm call names the cluster's context, so no other cluster is touched.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import httpx
import yaml
from rich.console import Console

from agentia import names
from agentia.paths import repo_root
from agentia_tools import kind_build, kind_config
from agentia_tools.kind_context import DOCKERFILE, context_tar
from agentia_tools.kind_render import GATEWAY_NODE_PORT, NAMESPACE, image
from agentia_tools.runtime.daprbin import DAPR_VERSION

CLUSTER: Final = "agentia"
CONTEXT: Final = f"kind-{CLUSTER}"
DAPR_NAMESPACE: Final = "dapr-system"  # where Helm installs Dapr's control plane
INFRA: Final = ("postgres", "rabbitmq", "redis")
HELM_REPOS: Final = {
    "dapr": "https://dapr.github.io/helm-charts/",
    "kedacore": "https://kedacore.github.io/charts",
}
console = Console(soft_wrap=True)  # long paths stay on one line in logs


class KindError(RuntimeError):
    """A tool is missing or a step failed; the message says which and what to do."""


def say(message: str) -> None:
    console.print(message, highlight=False)


def run(
    step: str,
    cmd: list[str],
    stdin: str | bytes | None = None,
    stream: bool = False,
    env: dict[str, str] | None = None,
) -> str:
    """Run one step, saying what it does and how long it took; stream long ones."""
    say(f"→ {step}")
    started = time.monotonic()
    proc = subprocess.run(
        cmd,
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=not stream,
        check=False,
        cwd=repo_root(),
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        out = (proc.stderr or proc.stdout or b"").decode(errors="replace")
        why = "see the output above" if stream else out[-2000:]
        raise KindError(f"{step} failed (`{' '.join(cmd[:4])} …`): {why}")
    console.print(f"  ✓ {time.monotonic() - started:.1f}s", style="dim", highlight=False)
    return (proc.stdout or b"").decode(errors="replace")


def kubectl(*args: str) -> list[str]:
    return ["kubectl", "--context", CONTEXT, *args]


def use_tools(plan: kind_build.Plan) -> None:
    """Put the plan's kind, kubectl and helm first on this process's PATH."""
    folders = list(dict.fromkeys(str(p.parent) for p in plan.tools.values()))
    os.environ["PATH"] = os.pathsep.join([*folders, os.environ.get("PATH", "")])


def cluster_exists() -> bool:
    return CLUSTER in run("listing kind clusters", ["kind", "get", "clusters"]).split()


def create_cluster(plan: kind_build.Plan, port: int) -> None:
    config = kind_config.cluster_config(port, plan.node_image)
    facts = kind_config.host_facts(kind_config.node_images(config)[0])
    config = kind_config.cluster_config(
        port, plan.node_image, **facts, shared=kind_config.fresh_shared_dir()
    )
    if facts["cgroup_v1"] or facts["no_sys_resource"]:
        say(
            "• this host: "
            + ", ".join(
                what
                for what, on in (
                    ("cgroup v1 (kubelet told failCgroupV1: false)", facts["cgroup_v1"]),
                    (
                        "no CAP_SYS_RESOURCE (containerd: restrict_oom_score_adj)",
                        facts["no_sys_resource"],
                    ),
                )
                if on
            )
        )
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="kind-agentia-") as f:
        yaml.safe_dump(config, f, sort_keys=False)
        f.flush()
        run(
            f"creating the kind cluster '{CLUSTER}' (1 control plane, 2 workers; gateway on "
            f"127.0.0.1:{port})",
            ["kind", "create", "cluster", "--name", CLUSTER, "--config", f.name, "--wait", "300s"],
            stream=True,
        )


def mapped_port() -> int | None:
    """The host port kind maps to the gateway's NodePort on the running cluster."""
    proc = subprocess.run(
        ["docker", "port", f"{CLUSTER}-control-plane", f"{GATEWAY_NODE_PORT}/tcp"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return int(proc.stdout.split()[0].rsplit(":", 1)[1])


def gateway_url(port: int | None = None) -> str:
    """The cluster gateway's URL: the running cluster's mapping, else the configured port."""
    found = mapped_port() if port is None else None
    return f"http://127.0.0.1:{found or kind_config.gateway_port(port)}"


SITE_CA_DIR: Final = Path("/usr/local/share/ca-certificates")


def site_ca_certs(folder: Path | None = None) -> str:
    """This machine's site-local CA certificates (PEM), e.g. a TLS-intercepting proxy's."""
    folder = folder or SITE_CA_DIR
    if not folder.is_dir():
        return ""
    return "".join(p.read_text() for p in sorted(folder.rglob("*.crt")) if p.is_file())


def build_service_images(python_image: str | None) -> dict[str, str]:
    """Build each service's image from the context the ignore file allows (kind_context);
    returns app id -> tag by image id, so a changed image rolls its pods."""
    context = context_tar()
    args = ["--build-arg", f"PYTHON_IMAGE={python_image}"] if python_image else []
    if certs := site_ca_certs():
        args += ["--build-arg", f"EXTRA_CA_CERTS={certs}"]
    tagged: dict[str, str] = {}
    for app_id in names.APP_IDS:
        dev = image(app_id)
        run(
            f"building {dev}",
            [
                "docker",
                "build",
                "-f",
                DOCKERFILE,
                f"--build-arg=SERVICE={app_id}",
                *args,
                "-t",
                dev,
                "-",
            ],
            stdin=context,
            stream=True,
            env={"DOCKER_BUILDKIT": "0"},  # the legacy builder needs no frontend image
        )
        image_id = run(
            f"reading the id of {dev}", ["docker", "image", "inspect", "--format", "{{.Id}}", dev]
        ).strip()
        tag = f"{dev.rsplit(':', 1)[0]}:{image_id.removeprefix('sha256:')[:12]}"
        run(f"tagging {tag}", ["docker", "tag", dev, tag])
        tagged[app_id] = tag
    return tagged


def all_nodes() -> list[str]:
    return sorted(run("listing the nodes", ["kind", "get", "nodes", "--name", CLUSTER]).split())


def worker_nodes() -> list[str]:
    return [n for n in all_nodes() if "control-plane" not in n]


def load_images(refs: list[str], *, every_node: bool = False) -> None:
    """One `kind load` for all: one save, shared layers sent once, images already there
    skipped; workers only (nothing of the mesh or of Dapr runs on the tainted control plane)
    unless ``every_node`` (a node agent's DaemonSet runs there too)."""
    nodes = all_nodes() if every_node else worker_nodes()
    run(
        f"loading {len(refs)} images into {', '.join(nodes)}",
        ["kind", "load", "docker-image", *refs, "--name", CLUSTER, "--nodes", ",".join(nodes)],
        stream=True,
    )


def helm_install(release: str, chart: str, namespace: str, *extra: str) -> None:
    repo, sep, _ = chart.partition("/")
    if sep and repo in HELM_REPOS and not Path(chart).exists():
        run(
            f"adding the Helm repository '{repo}'",
            ["helm", "repo", "add", repo, HELM_REPOS[repo], "--force-update"],
        )
    args = ["upgrade", "--install", release, chart, "--kube-context", CONTEXT]
    args += ["--namespace", namespace, "--create-namespace", "--wait", "--timeout", "10m", *extra]
    run(
        f"installing {release} (Helm, namespace {namespace}; waits until ready)",
        ["helm", *args],
        stream=True,
    )


def install_dapr(plan: kind_build.Plan) -> None:
    values = ["-f", str(repo_root() / "deploy" / "kind" / "dapr-values.yaml")]
    if plan.dapr_chart:
        helm_install("dapr", str(plan.dapr_chart), DAPR_NAMESPACE, *values, *plan.dapr_values)
    else:
        helm_install("dapr", "dapr/dapr", DAPR_NAMESPACE, "--version", DAPR_VERSION, *values)


def wait_for_gateway(url: str, timeout_s: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=3).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(2)
    return False


SERVICE_KINDS: Final = ("Deployment", "CronJob")


CONFIG_HASH: Final = "agentia.dev/dapr-config-hash"
# The build of daprd the sidecars run (its tag stays <version>-agentia while our patches
# change it): a new build must roll the pods, since a sidecar is injected only at start.
SIDECAR_BUILD: Final = "agentia.dev/daprd-build"


def _template(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template of a Deployment or a CronJob (None for anything else)."""
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template")
    return template if isinstance(template, dict) else None


def stamp_configs(docs: list[dict[str, Any]], sidecar_build: str | None = None) -> None:
    """Put a hash of each pod's Dapr Configuration (its access policy and secret scopes) on
    its template, and the daprd build its sidecar runs: a sidecar reads its Configuration
    and is injected only at start, so a changed one must roll the pods that use it."""
    configs = {
        d["metadata"]["name"]: hashlib.sha256(yaml.safe_dump(d["spec"]).encode()).hexdigest()[:16]
        for d in docs
        if d["kind"] == "Configuration"
    }
    for doc in docs:
        template = _template(doc)
        if template is None:
            continue
        annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
        name = annotations.get("dapr.io/config")
        if name in configs:
            annotations[CONFIG_HASH] = configs[name]
        if sidecar_build and annotations.get("dapr.io/enabled") == "true":
            annotations[SIDECAR_BUILD] = sidecar_build


def split_services(manifests: str, sidecar_build: str | None = None) -> tuple[str, str]:
    """(everything but the mesh's services, the services' Deployments and CronJobs): the
    brokers and stores first, so that no sidecar starts before them and backs off. Each
    service's pods carry the hash of their Dapr Configuration and the daprd build
    (stamp_configs)."""
    first: list[dict[str, Any]] = []
    then: list[dict[str, Any]] = []
    docs = [doc for doc in yaml.safe_load_all(manifests) if doc]
    stamp_configs(docs, sidecar_build)
    for doc in docs:
        component = doc.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component")
        late = doc["kind"] in SERVICE_KINDS and component != "infra"
        (then if late else first).append(doc)
    return (yaml.safe_dump_all(first, sort_keys=False), yaml.safe_dump_all(then, sort_keys=False))


def wait_for(workloads: list[str]) -> None:
    for workload in workloads:
        run(
            f"waiting for {workload}",
            kubectl("rollout", "status", workload, "-n", NAMESPACE, "--timeout=600s"),
        )


def wait_for_workloads() -> None:
    wait_for([f"statefulset/{s}" for s in INFRA] + [f"deployment/{a}" for a in names.APP_IDS])
