"""`agentia kind …`: the mesh on a kind cluster, and its manifests rendered offline.

`up` needs Docker, kind, kubectl and helm on the user's machine; `render`, `generate` and
the manifest tests need none of them (kustomize is built from its Go module when absent).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agentia import names
from agentia.kind_render import (
    APP_TOKEN_SECRET,
    DAPR_TOKEN_SECRET,
    IMAGE_PREFIX,
    IMAGE_TAG,
    K8S_SECRET,
    NAMESPACE,
    stale_generated,
    write_generated,
)
from agentia.paths import cache_home, repo_root
from agentia.runtime.daprbin import DAPR_VERSION

KUSTOMIZE_VERSION = "v5.7.1"
CLUSTER = "agentia"
OVERLAYS = ("dev", "full")

kind_app = typer.Typer(help="Run the mesh on a kind cluster (needs Docker, kind, kubectl, helm).")
console = Console()


class KindError(RuntimeError):
    """A tool is missing or a step failed; the message says which and what to do."""


def kind_dir() -> Path:
    return repo_root() / "deploy" / "kind"


def ensure_kustomize() -> Path:
    """kustomize from PATH, the cache, or built once from its Go module."""
    found = shutil.which("kustomize")
    if found:
        return Path(found)
    target = cache_home() / "bin" / f"kustomize-{KUSTOMIZE_VERSION}"
    if target.exists():
        return target
    if not shutil.which("go"):
        raise KindError("kustomize not found and Go is not installed to build it")
    console.print(f"• building kustomize {KUSTOMIZE_VERSION} from its Go module (once)")
    tmp = target.parent / f".build-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(tmp), "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
    proc = subprocess.run(
        ["go", "install", f"sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE_VERSION}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise KindError(f"building kustomize failed:\n{proc.stderr[-2000:]}")
    (tmp / "kustomize").rename(target)
    shutil.rmtree(tmp, ignore_errors=True)
    return target


def render(overlay: str) -> str:
    """The full manifest set of an overlay, as `kubectl apply -k` would send it."""
    if overlay not in OVERLAYS:
        raise KindError(f"unknown overlay '{overlay}'; one of: {', '.join(OVERLAYS)}")
    path = kind_dir() / "overlays" / overlay
    proc = subprocess.run(
        [str(ensure_kustomize()), "build", str(path)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise KindError(f"kustomize build {path} failed:\n{proc.stderr}")
    return proc.stdout


def _need(*tools: str) -> None:
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        raise KindError(
            f"{', '.join(missing)} not found: `agentia kind up` needs Docker, kind, "
            "kubectl and helm installed (see docs/kubernetes.md)"
        )


def _run(step: str, cmd: list[str], stdin: str | None = None) -> str:
    console.print(f"• {step}")
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise KindError(f"{step} failed ({' '.join(cmd[:3])} …):\n{proc.stderr[-2000:]}")
    return proc.stdout


def _secret_manifest(name: str, values: dict[str, str]) -> str:
    args = [
        "kubectl",
        "create",
        "secret",
        "generic",
        name,
        "-n",
        NAMESPACE,
        "--dry-run=client",
        "-o",
        "yaml",
    ]
    args += [f"--from-literal={k}={v}" for k, v in values.items()]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def _secrets() -> dict[str, dict[str, str]]:
    pw = {k: secrets.token_urlsafe(24) for k in ("postgres", "redis", "rabbitmq")}
    return {
        "agentia-infra": {f"{k}-password": v for k, v in pw.items()},
        K8S_SECRET: {
            names.SECRET_POSTGRES_DSN: (
                f"host=postgres port=5432 user=agentia "
                f"password={pw['postgres']} dbname=agentia sslmode=disable"
            ),
            names.SECRET_POSTGRES_URL: f"postgresql://agentia:{pw['postgres']}@postgres:5432/agentia",
            names.SECRET_RABBITMQ_URL: f"amqp://agentia:{pw['rabbitmq']}@rabbitmq:5672/",
            names.SECRET_REDIS_HOST: "redis:6379",
            names.SECRET_REDIS_PASSWORD: pw["redis"],
        },
        DAPR_TOKEN_SECRET: {"token": secrets.token_urlsafe(32)},
        APP_TOKEN_SECRET: {"token": secrets.token_urlsafe(32)},
    }


@kind_app.command()
def up(overlay: Annotated[str, typer.Option(help="dev or full")] = "dev") -> None:
    """Create the cluster, install Dapr, build and load the images, apply, wait, show the URL."""
    try:
        _need("docker", "kind", "kubectl", "helm")
        started = time.monotonic()
        clusters = _run("listing kind clusters", ["kind", "get", "clusters"]).split()
        if CLUSTER not in clusters:
            _run(
                "creating the kind cluster",
                ["kind", "create", "cluster", "--config", str(kind_dir() / "cluster.yaml")],
            )
        _run(
            "adding Dapr's Helm repository",
            [
                "helm",
                "repo",
                "add",
                "dapr",
                "https://dapr.github.io/helm-charts/",
                "--force-update",
            ],
        )
        _run(
            f"installing Dapr {DAPR_VERSION} (Helm)",
            [
                "helm",
                "upgrade",
                "--install",
                "dapr",
                "dapr/dapr",
                "--version",
                DAPR_VERSION,
                "--namespace",
                "dapr-system",
                "--create-namespace",
                "--wait",
                "-f",
                str(kind_dir() / "dapr-values.yaml"),
            ],
        )
        _run(
            "building the base image",
            [
                "docker",
                "build",
                "-f",
                "deploy/docker/base.Dockerfile",
                "-t",
                f"{IMAGE_PREFIX}/base:{IMAGE_TAG}",
                str(repo_root()),
            ],
        )
        for app_id in names.APP_IDS:
            image = f"{IMAGE_PREFIX}/{app_id}:{IMAGE_TAG}"
            _run(
                f"building {image}",
                [
                    "docker",
                    "build",
                    "-f",
                    f"services/{app_id}/Dockerfile",
                    "-t",
                    image,
                    str(repo_root()),
                ],
            )
            _run(
                f"loading {image} into kind",
                ["kind", "load", "docker-image", image, "--name", CLUSTER],
            )
        _run(
            "creating the namespace",
            ["kubectl", "apply", "-f", str(kind_dir() / "base" / "namespace.yaml")],
        )
        for name, values in _secrets().items():
            exists = (
                subprocess.run(
                    ["kubectl", "get", "secret", name, "-n", NAMESPACE],
                    capture_output=True,
                    check=False,
                ).returncode
                == 0
            )
            if not exists:
                _run(
                    f"creating secret {name}",
                    ["kubectl", "apply", "-f", "-"],
                    stdin=_secret_manifest(name, values),
                )
        _run(f"applying overlay {overlay}", ["kubectl", "apply", "-f", "-"], stdin=render(overlay))
        for app_id in names.APP_IDS:
            _run(
                f"waiting for {app_id}",
                [
                    "kubectl",
                    "rollout",
                    "status",
                    f"deployment/{app_id}",
                    "-n",
                    NAMESPACE,
                    "--timeout=300s",
                ],
            )
    except KindError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"mesh up on kind in {time.monotonic() - started:.0f}s; "
        "gateway: [bold]http://127.0.0.1:8000[/bold]"
    )


@kind_app.command()
def down() -> None:
    """Delete the kind cluster."""
    try:
        _need("kind")
        _run("deleting the kind cluster", ["kind", "delete", "cluster", "--name", CLUSTER])
    except KindError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


@kind_app.command("render")
def render_cmd(overlay: Annotated[str, typer.Argument(help="dev or full")] = "dev") -> None:
    """Print the manifests of an overlay (kustomize build), offline."""
    try:
        print(render(overlay), end="")
    except KindError as exc:
        console.print(f"[red]error:[/red] {exc}")
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
    for path in write_generated():
        console.print(f"wrote {path.relative_to(repo_root())}")
