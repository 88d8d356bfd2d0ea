"""`agentia kind …`: the mesh on a kind cluster, and its manifests rendered offline.

`up` needs Docker, kind, kubectl and helm on the user's machine; `render`, `generate` and
the manifest tests need none of them (kustomize is built once from its Go module).
Every kubectl and helm call names the cluster's context, so no other cluster is touched.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Annotated, Final

import httpx
import typer
from rich.console import Console

from agentia import names
from agentia.apikeys import KeyRing, new_key
from agentia.kind_render import (
    GATEWAY_NODE_PORT,
    NAMESPACE,
    TOKEN_KEY,
    dump,
    image,
    kind_dir,
    stale_generated,
    write_generated,
)
from agentia.kind_secrets import INFRA_SECRET, secret_manifests
from agentia.paths import agentia_home, cache_home, repo_root
from agentia.runtime.daprbin import DAPR_VERSION

KUSTOMIZE_VERSION: Final = "v5.7.1"
KIND_VERSION: Final = "v0.33.0"  # its default node image is the one cluster.yaml pins
KEDA_VERSION: Final = "2.21.0"
CLUSTER: Final = "agentia"
CONTEXT: Final = f"kind-{CLUSTER}"
DAPR_NAMESPACE: Final = "dapr-system"  # where Helm installs Dapr's control plane
OVERLAYS: Final = ("dev", "full")
INFRA: Final = ("postgres", "rabbitmq", "redis")
GATEWAY_URL: Final = "http://127.0.0.1:8000"
KIND_KEY_NAME: Final = "kind-local"  # the write key `agentia kind up` makes for this machine
DOCKERFILE: Final = "deploy/docker/Dockerfile"

kind_app = typer.Typer(
    help="Run the mesh on a kind cluster (needs Docker, kind, kubectl, helm).",
    no_args_is_help=True,
)
console = Console()


class KindError(RuntimeError):
    """A tool is missing or a step failed; the message says which and what to do."""


def ensure_kustomize() -> Path:
    """kustomize from PATH, else the cached build, else built once from its Go module."""
    found = shutil.which("kustomize")
    if found:
        return Path(found)
    target = cache_home() / "bin" / f"kustomize-{KUSTOMIZE_VERSION}"
    if target.exists():
        return target
    if not shutil.which("go"):
        raise KindError(
            "kustomize is not on PATH and Go is not installed to build it: install either "
            "(https://kubectl.docs.kubernetes.io/installation/kustomize/ or https://go.dev/dl/)"
        )
    console.print(
        f"• building kustomize {KUSTOMIZE_VERSION} from its Go module, once "
        "(~30 s with Go's module cache warm, a few minutes without)",
        highlight=False,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        env = {
            **os.environ,
            "GOBIN": tmp,
            "CGO_ENABLED": "0",
            "GOFLAGS": "-mod=mod -buildvcs=false",
        }
        proc = subprocess.run(
            ["go", "install", f"sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE_VERSION}"],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise KindError(f"building kustomize failed:\n{proc.stderr[-2000:]}")
        (Path(tmp) / "kustomize").replace(target)
    return target


def kustomize_command() -> list[str]:
    """The pinned kustomize; `kubectl kustomize` (embedded, older) only when it can't be had."""
    try:
        return [str(ensure_kustomize()), "build"]
    except KindError:
        if shutil.which("kubectl"):
            return ["kubectl", "kustomize"]
        raise


def kustomize_build(path: Path) -> str:
    """`kustomize build path`: the manifests, as `kubectl apply -k` would send them."""
    proc = subprocess.run(
        [*kustomize_command(), str(path)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise KindError(f"kustomize build {path} failed:\n{proc.stderr}")
    return proc.stdout


def overlay_dir(overlay: str) -> Path:
    if overlay not in OVERLAYS:
        raise KindError(f"unknown overlay '{overlay}'; one of: {', '.join(OVERLAYS)}")
    return kind_dir() / "overlays" / overlay


def render(overlay: str) -> str:
    return kustomize_build(overlay_dir(overlay))


def _need(*tools: str) -> None:
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        raise KindError(
            f"not found on PATH: {', '.join(missing)}. `agentia kind up` needs Docker, "
            f"kind ({KIND_VERSION} or later), kubectl and helm; see docs/kubernetes.md"
        )


def _run(step: str, cmd: list[str], stdin: str | None = None, stream: bool = False) -> str:
    """Run one step, saying what it does and how long it took; stream long ones."""
    console.print(f"→ {step}", highlight=False)
    started = time.monotonic()
    proc = subprocess.run(
        cmd, input=stdin, capture_output=not stream, text=True, check=False, cwd=repo_root()
    )
    if proc.returncode != 0:
        why = "see the output above" if stream else (proc.stderr or proc.stdout)[-2000:]
        raise KindError(f"{step} failed (`{' '.join(cmd[:4])} …`): {why}")
    console.print(f"  ✓ {time.monotonic() - started:.1f}s", style="dim", highlight=False)
    return proc.stdout or ""


def _kubectl(*args: str) -> list[str]:
    return ["kubectl", "--context", CONTEXT, *args]


def _existing_secret(name: str) -> dict[str, str]:
    proc = subprocess.run(
        _kubectl("get", "secret", name, "-n", NAMESPACE, "-o", "json"),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {}
    data = json.loads(proc.stdout).get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def _secrets_yaml() -> str:
    """The Secrets, keeping the passwords and tokens of an earlier `up` (never printed)."""
    infra = _existing_secret(INFRA_SECRET)
    passwords = {k: infra.get(f"{k}-password") or secrets.token_urlsafe(24) for k in INFRA}
    tokens = {
        name: _existing_secret(name).get(TOKEN_KEY) or secrets.token_urlsafe(32)
        for name in (names.SECRET_DAPR_API_TOKEN, names.SECRET_APP_API_TOKEN)
    }
    openai = os.environ.get("OPENAI_API_KEY") or None
    return dump(secret_manifests(passwords, tokens, openai, _api_keys()), header="")


def kind_key_path() -> Path:
    """Where the cluster gateway's write key is kept on this machine (0600)."""
    return agentia_home() / "kind-api-key"


def _api_keys() -> str:
    """The cluster's key ring, with a write key for this machine's user: kept across runs,
    made anew (the old one revoked) when its plaintext is no longer here."""
    current = _existing_secret(names.SECRET_GATEWAY_API_KEYS).get(names.SECRET_GATEWAY_API_KEYS)
    ring = KeyRing.from_secret(current)
    path = kind_key_path()
    known = path.read_text().strip() if path.exists() else ""
    if not (known and ring.verify(known)):
        ring.keys = {i: r for i, r in ring.keys.items() if r.name != KIND_KEY_NAME}
        key, record = new_key(KIND_KEY_NAME, "write")
        ring.keys[record.id] = record
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(key + "\n")
    return ring.to_secret()


def _load_images(build: bool) -> dict[str, str]:
    """Build each service's image (the shared stage builds once) and load it into kind.

    Returns app id -> the tag loaded: the image's id, so a changed image rolls its pods."""
    loaded: dict[str, str] = {}
    for app_id in names.APP_IDS:
        dev = image(app_id)
        if build:
            args = ["-f", DOCKERFILE, f"--build-arg=SERVICE={app_id}", "-t", dev, "."]
            _run(f"building {dev}", ["docker", "build", *args], stream=True)
        image_id = _run(
            f"reading the id of {dev}", ["docker", "image", "inspect", "--format", "{{.Id}}", dev]
        ).strip()
        tagged = f"{dev.rsplit(':', 1)[0]}:{image_id.removeprefix('sha256:')[:12]}"
        _run(f"tagging {tagged}", ["docker", "tag", dev, tagged])
        _run(
            f"loading {tagged} into kind",
            ["kind", "load", "docker-image", tagged, "--name", CLUSTER],
        )
        loaded[app_id] = tagged
    return loaded


def _helm_install(release: str, chart: str, version: str, namespace: str, *extra: str) -> None:
    repo, _, _ = chart.partition("/")
    url = {
        "dapr": "https://dapr.github.io/helm-charts/",
        "kedacore": "https://kedacore.github.io/charts",
    }
    _run(
        f"adding the Helm repository '{repo}'",
        ["helm", "repo", "add", repo, url[repo], "--force-update"],
    )
    args = ["upgrade", "--install", release, chart, "--version", version]
    args += ["--kube-context", CONTEXT, "--namespace", namespace, "--create-namespace"]
    args += ["--wait", "--timeout", "10m", *extra]
    _run(
        f"installing {chart} {version} (Helm, namespace {namespace}; waits until ready)",
        ["helm", *args],
        stream=True,
    )


def _wait_for_gateway(timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{GATEWAY_URL}/healthz", timeout=3).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(2)
    return False


def _up(overlay: str, build: bool) -> None:
    manifests = render(overlay)  # a bad overlay fails before anything is touched
    _need("docker", "kind", "kubectl", "helm")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        raise KindError("the Docker engine is not answering (`docker info` fails): start it")
    if CLUSTER in _run("listing kind clusters", ["kind", "get", "clusters"]).split():
        console.print(f"• kind cluster '{CLUSTER}' exists; reusing it", highlight=False)
    else:
        config = str(kind_dir() / "cluster.yaml")
        _run(
            f"creating the kind cluster '{CLUSTER}' (1 control plane, 2 workers)",
            ["kind", "create", "cluster", "--name", CLUSTER, "--config", config, "--wait", "180s"],
            stream=True,
        )
    values = str(kind_dir() / "dapr-values.yaml")
    _helm_install("dapr", "dapr/dapr", DAPR_VERSION, DAPR_NAMESPACE, "-f", values)
    if overlay == "full":
        _helm_install("keda", "kedacore/keda", KEDA_VERSION, "keda")
    for app_id, tagged in _load_images(build).items():
        manifests = manifests.replace(f"image: {image(app_id)}", f"image: {tagged}")
    namespace = str(kind_dir() / "base" / "namespace.yaml")
    _run("creating the namespace", _kubectl("apply", "-f", namespace))
    _run(
        "applying the Secrets (passwords and tokens kept across runs)",
        _kubectl("apply", "-f", "-"),
        stdin=_secrets_yaml(),
    )
    _run(f"applying overlay '{overlay}'", _kubectl("apply", "-f", "-"), stdin=manifests)
    workloads = [f"statefulset/{s}" for s in INFRA] + [f"deployment/{a}" for a in names.APP_IDS]
    for workload in workloads:
        _run(
            f"waiting for {workload}",
            _kubectl("rollout", "status", workload, "-n", NAMESPACE, "--timeout=300s"),
        )


@kind_app.command()
def up(
    overlay: Annotated[str, typer.Option(help="dev (services + infrastructure) or full")] = "dev",
    build: Annotated[
        bool, typer.Option(help="Build the images (--no-build: load those built before)")
    ] = True,
) -> None:
    """Create the cluster, install Dapr, build and load the images, apply, wait, show the URL."""
    started = time.monotonic()
    try:
        _up(overlay, build)
    except KindError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2 if "unknown overlay" in str(exc) else 1) from None
    console.print(f"mesh up on kind in {time.monotonic() - started:.0f}s", highlight=False)
    if _wait_for_gateway():
        console.print(f"gateway: {GATEWAY_URL} (NodePort {GATEWAY_NODE_PORT})", highlight=False)
    else:
        console.print(
            f"gateway not answering at {GATEWAY_URL} (is port 8000 taken?); use:\n"
            f"  kubectl --context {CONTEXT} -n {NAMESPACE} port-forward svc/gateway 8080:8000",
            highlight=False,
        )


@kind_app.command()
def images(
    build: Annotated[
        bool, typer.Option(help="Build the images (--no-build: load those built before)")
    ] = True,
) -> None:
    """Build the service images and load them into the kind cluster (what `up` does first)."""
    try:
        _need("docker", "kind")
        if CLUSTER not in _run("listing kind clusters", ["kind", "get", "clusters"]).split():
            raise KindError(f"no kind cluster '{CLUSTER}': run `agentia kind up` first")
        loaded = _load_images(build)
    except KindError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    for app_id, tagged in loaded.items():
        console.print(f"{app_id}: {tagged}", highlight=False)


@kind_app.command()
def down() -> None:
    """Delete the kind cluster (and everything in it)."""
    try:
        _need("kind")
        _run(
            f"deleting the kind cluster '{CLUSTER}'",
            ["kind", "delete", "cluster", "--name", CLUSTER],
        )
    except KindError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


@kind_app.command("render")
def render_cmd(overlay: Annotated[str, typer.Argument(help="dev or full")] = "dev") -> None:
    """Print the manifests of an overlay (kustomize build), offline."""
    try:
        print(render(overlay), end="")
    except KindError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2 if "unknown overlay" in str(exc) else 1) from None


@kind_app.command()
def generate(check: Annotated[bool, typer.Option(help="Only report stale files")] = False) -> None:
    """Regenerate the service manifests and Dapr resources from names.py and components/."""
    if check:
        stale = stale_generated()
        if stale:
            console.print(f"stale: {', '.join(stale)} (run `agentia kind generate`)")
            raise typer.Exit(1)
        console.print("generated manifests are up to date")
        return
    written = write_generated()
    for path in written:
        console.print(f"wrote {path.relative_to(repo_root())}", highlight=False)
    if not written:
        console.print("generated manifests were already up to date")
