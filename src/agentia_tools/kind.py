"""`agentia kind …`: the mesh on a kind cluster, and its manifests rendered offline.

`build` makes (or finds cached) everything the cluster needs, from the registries this
machine reaches (kind_build.py); `up` uses it, building what is missing first; `render`,
`generate` and the manifest tests need none of it (kustomize is built once from its Go
module). Every kubectl and helm call names the cluster's context (kind_up.py).
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

import typer

from agentia import names
from agentia.apikeys import KeyRing, new_key
from agentia.paths import agentia_home, cache_home, repo_root
from agentia_tools import kind_build, kind_config, kind_keda
from agentia_tools.kind_config import DEFAULT_GATEWAY_PORT, GATEWAY_PORT_ENV
from agentia_tools.kind_engine import EngineError
from agentia_tools.kind_gobuild import KEDA_VERSION, GoBuildError
from agentia_tools.kind_images import ImageError, pullable
from agentia_tools.kind_render import (
    GATEWAY_NODE_PORT,
    NAMESPACE,
    TOKEN_KEY,
    dump,
    image,
    kind_dir,
    stale_generated,
    write_generated,
)
from agentia_tools.kind_secrets import INFRA_SECRET, secret_manifests
from agentia_tools.kind_up import (
    CLUSTER,
    CONTEXT,
    DAPR_NAMESPACE,
    INFRA,
    KindError,
    build_service_images,
    cluster_exists,
    console,
    create_cluster,
    gateway_url,
    helm_install,
    install_dapr,
    kubectl,
    load_images,
    run,
    say,
    split_services,
    use_tools,
    wait_for,
    wait_for_gateway,
    wait_for_workloads,
)

KUSTOMIZE_VERSION: Final = "v5.7.1"
KIND_VERSION: Final = "v0.33.0"  # its default node image is the one cluster.yaml pins
OVERLAYS: Final = ("dev", "policies", "full", "local-model")
ENFORCED: Final = ("policies", "full", "local-model")  # the overlays with the policy engine
# The cluster gateway's default URL; `gateway_url()` reads the running cluster's mapping.
GATEWAY_URL: Final = f"http://127.0.0.1:{DEFAULT_GATEWAY_PORT}"
KIND_KEY_NAME: Final = "kind-local"  # the write key `agentia kind up` makes for this machine
# Its rate: the kind chaos load and bench/kind_scale.py poll every unsettled run each second,
# far over the gateway's default 600 a minute; it is this machine's own key, kept 0600.
KIND_KEY_RATE_PER_MINUTE: Final = 100_000
DOCKERFILE: Final = "deploy/docker/Dockerfile"
POLICY_ENGINE: Final = "daemonset/kube-router"  # components/policy-engine, in kube-system
__all__ = ["CLUSTER", "CONTEXT", "DAPR_NAMESPACE", "INFRA", "KEDA_VERSION", "KindError"]

kind_app = typer.Typer(
    help="Run the mesh on a kind cluster (builds what it needs offline: `agentia kind build`).",
    no_args_is_help=True,
)


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


def _kubectl(*args: str) -> list[str]:
    return kubectl(*args)


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
        key, record = new_key(KIND_KEY_NAME, "write", KIND_KEY_RATE_PER_MINUTE)
        ring.keys[record.id] = record
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(key + "\n")
    for key_id, rec in ring.keys.items():  # a key made before the rate was set gets it too
        if rec.name == KIND_KEY_NAME and rec.rate_limit_per_minute != KIND_KEY_RATE_PER_MINUTE:
            update = {"rate_limit_per_minute": KIND_KEY_RATE_PER_MINUTE}
            ring.keys[key_id] = rec.model_copy(update=update)
    return ring.to_secret()


def _wait_for_gateway(url: str) -> bool:
    return wait_for_gateway(url)


def _plan() -> kind_build.Plan:
    """What the cluster runs: built or found cached (seconds when it is), or pulled."""
    timings: dict[str, float] = {}
    try:
        plan = kind_build.build(say, timings)
    except (EngineError, GoBuildError, ImageError) as exc:
        raise KindError(str(exc)) from exc
    use_tools(plan)
    return plan


def _up(overlay: str, build: bool, port: int) -> str:
    manifests = render(overlay)  # a bad overlay fails before anything is touched
    plan = _plan()
    for note in plan.notes:
        say(f"• {note}")
    if overlay == "local-model" and plan.model_server is None:
        raise KindError("overlay local-model: run `agentia model build` first")
    if cluster_exists():
        say(f"• kind cluster '{CLUSTER}' exists; reusing it")
    else:
        create_cluster(plan, port)
    keda = _keda_images() if overlay == "full" else {}
    tagged = build_service_images(plan.python_image) if build else _existing_tags()
    extra = plan.beyond_dev if overlay in ENFORCED else []
    if overlay == "local-model" and plan.model_server:
        extra = [*extra, plan.model_server]
    load_images([*plan.load, *extra, *keda.values(), *tagged.values()])
    if overlay in ENFORCED and plan.every_node:
        load_images(plan.every_node, every_node=True)
    install_dapr(plan)
    if overlay == "full" and keda:
        _install_keda(keda)
    elif overlay == "full":
        helm_install("keda", "kedacore/keda", "keda", "--version", KEDA_VERSION)
    for app_id, tag in tagged.items():
        manifests = manifests.replace(f"image: {image(app_id)}", f"image: {tag}")
    namespace = str(kind_dir() / "base" / "namespace.yaml")
    run("creating the namespace", _kubectl("apply", "-f", namespace))
    run(
        "applying the Secrets (passwords and tokens kept across runs)",
        _kubectl("apply", "-f", "-"),
        stdin=_secrets_yaml(),
    )
    infra, services = split_services(manifests, plan.sidecar_build)
    run(
        f"applying overlay '{overlay}': stores, brokers, Dapr resources",
        _kubectl("apply", "-f", "-"),
        stdin=infra,
    )
    wait_for([f"statefulset/{s}" for s in INFRA])
    run(f"applying overlay '{overlay}': the services", _kubectl("apply", "-f", "-"), stdin=services)
    if overlay in ENFORCED:  # the policy engine: policies are enforced once it is ready
        run(
            "waiting for the policy engine (kube-router)",
            _kubectl("rollout", "status", POLICY_ENGINE, "-n", "kube-system", "--timeout=300s"),
        )
    wait_for_workloads()
    return gateway_url()


def _keda_images() -> dict[str, str]:
    """KEDA's images built here (empty when its published ones can be pulled: its chart)."""
    if pullable(f"ghcr.io/kedacore/keda:{KEDA_VERSION}"):
        return {}
    try:
        return kind_keda.images(say)
    except (GoBuildError, ImageError) as exc:
        raise KindError(str(exc)) from exc


def _install_keda(built: dict[str, str]) -> None:
    """KEDA from its own kustomization, before the ScaledObjects that need its CRDs."""
    try:
        docs = kind_keda.manifests(kustomize_build, built, say)
    except RuntimeError as exc:  # KindError (kustomize) is one; a foreign image is another
        raise KindError(str(exc)) from exc
    # Server-side: KEDA's CRDs are larger than client-side apply's annotation allows.
    apply = _kubectl("apply", "--server-side", "--force-conflicts", "-f", "-")
    run(f"applying KEDA {KEDA_VERSION} (built here)", apply, stdin=docs)
    for name in kind_keda.DEPLOYMENTS:
        run(
            f"waiting for KEDA's {name}",
            _kubectl(
                "rollout",
                "status",
                f"deployment/{name}",
                "-n",
                kind_keda.NAMESPACE,
                "--timeout=300s",
            ),
        )


def _existing_tags() -> dict[str, str]:
    """--no-build: the id-tagged images of an earlier build."""
    out = {}
    for app_id in names.APP_IDS:
        dev = image(app_id)
        image_id = run(
            f"reading the id of {dev}", ["docker", "image", "inspect", "--format", "{{.Id}}", dev]
        ).strip()
        out[app_id] = f"{dev.rsplit(':', 1)[0]}:{image_id.removeprefix('sha256:')[:12]}"
    return out


@kind_app.command("build")
def build_cmd() -> None:
    """Build (or find cached) everything the cluster needs, offline if need be."""
    started = time.monotonic()
    timings: dict[str, float] = {}
    try:
        plan = kind_build.build(say, timings)
    except (EngineError, GoBuildError, ImageError) as exc:
        say(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    for note in plan.notes:
        say(f"• {note}")
    steps = ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
    say(f"kind artifacts ready in {time.monotonic() - started:.0f}s ({steps})")


@kind_app.command()
def up(
    overlay: Annotated[
        str,
        typer.Option(
            help="dev (services + infrastructure), policies (dev + network policies "
            "enforced) or full"
        ),
    ] = "dev",
    build: Annotated[
        bool, typer.Option(help="Build the images (--no-build: load those built before)")
    ] = True,
    gateway_port: Annotated[
        int | None,
        typer.Option(
            help=f"Host port of the gateway (default ${GATEWAY_PORT_ENV} or "
            f"{DEFAULT_GATEWAY_PORT}; the local mesh owns 8000)"
        ),
    ] = None,
) -> None:
    """Create the cluster, install Dapr, build and load the images, apply, wait, show the URL."""
    started = time.monotonic()
    port = kind_config.gateway_port(gateway_port)
    try:
        url = _up(overlay, build, port)
    except KindError as exc:
        say(f"[red]error:[/red] {exc}")
        raise typer.Exit(2 if "unknown overlay" in str(exc) else 1) from None
    say(f"mesh up on kind in {time.monotonic() - started:.0f}s")
    if _wait_for_gateway(url):
        say(f"gateway: {url} (NodePort {GATEWAY_NODE_PORT})")
    else:
        say(
            f"gateway not answering at {url} (is the port taken?); use:\n"
            f"  kubectl --context {CONTEXT} -n {NAMESPACE} port-forward svc/gateway 8080:8000"
        )


@kind_app.command()
def images(
    build: Annotated[
        bool, typer.Option(help="Build the images (--no-build: load those built before)")
    ] = True,
) -> None:
    """Build the service images and load them into the kind cluster (what `up` does first)."""
    try:
        plan = _plan()
        if not cluster_exists():
            raise KindError(f"no kind cluster '{CLUSTER}': run `agentia kind up` first")
        loaded = build_service_images(plan.python_image) if build else _existing_tags()
        load_images(list(loaded.values()))
    except KindError as exc:
        say(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    for app_id, tag in loaded.items():
        say(f"{app_id}: {tag}")


@kind_app.command()
def down() -> None:
    """Delete the kind cluster (and everything in it)."""
    try:
        kind = kind_build.tool_path("kind", say, build=False)
        run(
            f"deleting the kind cluster '{CLUSTER}'",
            [str(kind), "delete", "cluster", "--name", CLUSTER],
        )
    except (KindError, EngineError) as exc:
        say(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


@kind_app.command("render")
def render_cmd(
    overlay: Annotated[str, typer.Argument(help="dev, policies or full")] = "dev",
) -> None:
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
