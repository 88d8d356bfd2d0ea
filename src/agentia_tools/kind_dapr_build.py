"""Dapr's control plane and sidecar for the cluster, built from github.com/dapr/dapr at the
local runtime's version, and its Helm chart (the module's ``charts/dapr``).

As for the local runtime (runtime/dapr/build.sh), daprd gets a curated component set:
the local one (runtime/dapr/curated/components.go) plus what Kubernetes mode needs
(deploy/kind/recipes/go/dapr/kubernetes.go: the Kubernetes name resolver and secret store).
The wrapper module (deploy/kind/recipes/go/dapr/go.mod) repeats runtime/dapr/go.mod's
requirements and replace lines; its go.sum also pins what the operator and the injector
use. Images are single binaries at ``/<name>``, running as the distroless nonroot user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

from agentia.paths import repo_root
from agentia_tools.kind_engine import kind_cache
from agentia_tools.kind_gobuild import GoBuildError, GoTool, go_build, go_env
from agentia_tools.kind_images import LOCAL, NONROOT, binary_image
from agentia_tools.runtime.daprbin import DAPR_VERSION

Progress = Callable[[str], None]
PROGRAMS: Final = ("daprd", "operator", "injector", "sentry", "placement", "scheduler")
IMAGE_REGISTRY: Final = f"{LOCAL}/dapr"  # the chart's global.registry for these images
IMAGE_TAG: Final = f"{DAPR_VERSION}-agentia"  # the chart's global.tag
CURATED: Final = "runtime/dapr/curated/components.go"
# Our fixes to upstream Dapr and its components, the same the local build applies
# (runtime/dapr/build.sh).
PATCHES: Final = tuple(
    sorted(
        str(p.relative_to(repo_root()))
        for p in (repo_root() / "runtime/dapr/patches").glob("*.patch")
    )
)
_LDFLAGS: Final = (
    f"-X github.com/dapr/dapr/pkg/buildinfo.version={DAPR_VERSION}",
    f"-X github.com/dapr/dapr/pkg/buildinfo.gitversion=v{DAPR_VERSION}",
    "-X github.com/dapr/dapr/pkg/buildinfo.gitcommit=agentia-kind-curated",
)
TOOL: Final = GoTool(
    "dapr",
    "github.com/dapr/dapr",
    f"v{DAPR_VERSION}",
    {p: f"github.com/dapr/dapr/cmd/{p}" for p in PROGRAMS},
    ldflags=_LDFLAGS,
    inputs=(CURATED, *PATCHES),
)
_LOCAL_REPLACE: Final = "replace github.com/dapr/dapr => ./dapr"
_CONTRIB_REPLACE: Final = "replace github.com/dapr/components-contrib => ./components-contrib"


def _download(
    work: Path, refresh: bool, module: str = f"github.com/dapr/dapr@v{DAPR_VERSION}"
) -> Path:
    """An upstream module's folder in Go's module cache, checked against go.sum in ``work``
    (without a version: the one the build list in ``work`` has)."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json", module],
        cwd=work,
        env=go_env(refresh),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise GoBuildError(f"downloading {module} failed:\n{proc.stdout[-1500:]}")
    return Path(json.loads(proc.stdout)["Dir"])


def _prepare(work: Path, refresh: bool) -> None:
    """A scratch copy of the upstream module with the curated component registry."""
    wrapper = TOOL.wrapper()
    shutil.copy2(wrapper / "go.mod", work / "go.mod")
    if (wrapper / "go.sum").exists():
        shutil.copy2(wrapper / "go.sum", work / "go.sum")
    shutil.copytree(_download(work, refresh), work / "dapr")
    for path in (work / "dapr").rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    components = work / "dapr" / "cmd" / "daprd" / "components"
    for path in components.iterdir():
        path.unlink()
    shutil.copy2(repo_root() / CURATED, components / "components.go")
    shutil.copy2(wrapper / "kubernetes.go", components / "kubernetes.go")
    contrib = work / "components-contrib"
    shutil.copytree(_download(work, refresh, "github.com/dapr/components-contrib"), contrib)
    for path in contrib.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    for patch in PATCHES:
        # A patch's name says which module it fixes (as in runtime/dapr/build.sh).
        module = "dapr" if Path(patch).name.startswith("dapr-") else "components-contrib"
        subprocess.run(
            ["git", "apply", "-p1", str(repo_root() / patch)], cwd=work / module, check=True
        )
    with (work / "go.mod").open("a") as f:
        f.write(f"\n{_LOCAL_REPLACE}\n{_CONTRIB_REPLACE}\n")


def refresh_sums(progress: Progress) -> None:
    """Rewrite the wrapper's go.mod/go.sum from the module proxy (after a version change)."""
    with tempfile.TemporaryDirectory(prefix="dapr-refresh-") as tmp:
        work = Path(tmp)
        _prepare(work, refresh=True)
        progress("resolving Dapr's control plane modules (go mod tidy; trusts the proxy once)")
        proc = subprocess.run(
            ["go", "mod", "tidy"],
            cwd=work,
            env=go_env(refresh=True),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise GoBuildError(f"go mod tidy for Dapr failed:\n{proc.stderr[-2000:]}")
        text = (work / "go.mod").read_text().replace(_LOCAL_REPLACE, "")
        text = text.replace(_CONTRIB_REPLACE, "").rstrip() + "\n"
        (TOOL.wrapper() / "go.mod").write_text(text)
        shutil.copy2(work / "go.sum", TOOL.wrapper() / "go.sum")


def build(progress: Progress) -> Path:
    """The folder with the six Dapr programs (cached; ~15-25 min of CPU the first time)."""
    out = TOOL.out_dir()
    if all((out / p).is_file() for p in PROGRAMS):
        return out
    if os.environ.get("AGENTIA_KIND_REFRESH_SUMS"):
        refresh_sums(progress)
    with tempfile.TemporaryDirectory(prefix=".dapr-src-", dir=kind_cache()) as tmp:
        _prepare(Path(tmp), refresh=False)
        return go_build(TOOL, progress, cwd=Path(tmp))


def images(progress: Progress) -> dict[str, str]:
    """Program -> image (``agentia.local/dapr/<program>:<version>-agentia``)."""
    bins = build(progress)
    out = {}
    for program in PROGRAMS:
        ref = f"{IMAGE_REGISTRY}/{program}:{IMAGE_TAG}"
        binary_image(
            f"dapr-{program}",
            {program: bins / program},
            entrypoint=[f"/{program}"],
            user=NONROOT,
            tags=[ref],
        )
        out[program] = ref
    return out


def chart_dir(progress: Progress) -> Path:
    """Dapr's Helm chart at the runtime's version, from the module (in Go's module cache)."""
    with tempfile.TemporaryDirectory(prefix="dapr-chart-") as tmp:
        shutil.copy2(TOOL.wrapper() / "go.mod", Path(tmp) / "go.mod")
        shutil.copy2(TOOL.wrapper() / "go.sum", Path(tmp) / "go.sum")
        chart = _download(Path(tmp), refresh=False) / "charts" / "dapr"
    progress(f"Dapr's chart: {chart}")
    return chart


def chart_values() -> list[str]:
    """Helm --set arguments pointing the chart at the images built here."""
    return [
        "--set",
        f"global.registry={IMAGE_REGISTRY}",
        "--set",
        f"global.tag={IMAGE_TAG}",
        "--set",
        "global.imagePullPolicy=IfNotPresent",
    ]
