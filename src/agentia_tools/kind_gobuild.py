"""The cluster's Go programs, built from their Go modules (the module proxy is reachable
where GitHub releases are not) and cached under ``~/.cache/agentia/kind/bin/``.

Each program is built from a small wrapper module, ``deploy/kind/recipes/go/<name>/``, whose
``go.mod`` requires the upstream module (repeating its ``replace`` lines where it has
any, e.g. Kubernetes' staging modules) and lists the programs as ``tool``s, and whose
``go.sum`` pins every module the build uses: the build runs with ``-mod=readonly`` and never
needs the public checksum database (not reachable here). ``AGENTIA_KIND_REFRESH_SUMS=1``
rewrites the ``go.mod``/``go.sum`` pair after a version change (trusting the module proxy
once; review the diff). A cache folder's name carries a hash of its inputs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from agentia.paths import repo_root
from agentia_tools.kind_engine import kind_cache

Progress = Callable[[str], None]
K8S_VERSION: Final = "v1.37.2"  # v1.37.0 (kind v0.33.0's default) is not served
K8S_STAGING_VERSION: Final = "v0.37.2"
STATIC_CGO: Final = "-extldflags=-static"
KUBE_ROUTER_VERSION: Final = "v2.1.0"
KEDA_VERSION: Final = "2.21.0"
_KUBE_ROUTER_VERSION_PKG: Final = "github.com/cloudnativelabs/kube-router/v2/pkg/version"


class GoBuildError(RuntimeError):
    """A Go build failed or Go is missing; the message has the tail of Go's output."""


def _k8s_ldflags() -> tuple[str, ...]:
    """What Kubernetes' hack/lib/version.sh stamps (the version kubeadm and kubelet report)."""
    major, minor, _ = K8S_VERSION.lstrip("v").split(".")
    out = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        out += [
            f"-X {pkg}.gitVersion={K8S_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=archive",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return tuple(out)


@dataclass(frozen=True)
class GoTool:
    """One upstream module and the programs built from it."""

    name: str  # wrapper folder and cache folder name
    module: str
    version: str
    programs: dict[str, str]  # binary name -> package path
    ldflags: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    cgo: bool = False  # with cgo, linked statically (the binaries go into other distros)
    replace: dict[str, str] = field(default_factory=dict)  # module -> version
    inputs: tuple[str, ...] = ()  # other repository files the build uses
    own_main: bool = False  # the wrapper holds the program's main package itself

    def wrapper(self) -> Path:
        return repo_root() / "deploy" / "kind" / "recipes" / "go" / self.name

    def key(self) -> str:
        """A hash of everything the build depends on: this description, the wrapper
        folder's files and the other inputs."""
        digest = hashlib.sha256(repr(self).encode())
        files = sorted(p for p in self.wrapper().rglob("*") if p.is_file())
        for path in [*files, *(repo_root() / rel for rel in self.inputs)]:
            digest.update(path.name.encode())
            digest.update(path.read_bytes() if path.exists() else b"")
        return digest.hexdigest()[:10]

    def out_dir(self) -> Path:
        return kind_cache() / "bin" / f"{self.name}-{self.version}-{self.key()}"


_K8S_STAGING = [
    "api",
    "apiextensions-apiserver",
    "apimachinery",
    "apiserver",
    "cli-runtime",
    "client-go",
    "cloud-provider",
    "cluster-bootstrap",
    "code-generator",
    "component-base",
    "component-helpers",
    "controller-manager",
    "cri-api",
    "cri-client",
    "cri-streaming",
    "csi-translation-lib",
    "dynamic-resource-allocation",
    "endpointslice",
    "externaljwt",
    "kms",
    "kube-aggregator",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "metrics",
    "mount-utils",
    "pod-security-admission",
    "sample-apiserver",
    "sample-cli-plugin",
    "sample-controller",
    "streaming",
]
K8S_PROGRAMS: Final = [
    "kubeadm",
    "kubelet",
    "kubectl",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
]

TOOLS: Final = {
    t.name: t
    for t in (
        GoTool("kind", "sigs.k8s.io/kind", "v0.33.0", {"kind": "sigs.k8s.io/kind"}),
        GoTool(
            "kubernetes",
            "k8s.io/kubernetes",
            K8S_VERSION,
            {p: f"k8s.io/kubernetes/cmd/{p}" for p in K8S_PROGRAMS},
            ldflags=_k8s_ldflags(),
            # The module zip has no staging/ folder: its replace block points there, so the
            # wrapper takes the published staging modules instead.
            replace={f"k8s.io/{m}": K8S_STAGING_VERSION for m in _K8S_STAGING},
        ),
        GoTool(
            "containerd",
            "github.com/containerd/containerd/v2",
            "v2.3.4",
            {
                p: f"github.com/containerd/containerd/v2/cmd/{p}"
                for p in ("containerd", "ctr", "containerd-shim-runc-v2")
            },
            ldflags=("-X github.com/containerd/containerd/v2/version.Version=v2.3.4",),
            tags=("no_aufs", "no_zfs", "no_btrfs", "no_devmapper"),
        ),
        GoTool(
            "runc",
            "github.com/opencontainers/runc",
            "v1.4.3",
            {"runc": "github.com/opencontainers/runc"},
            tags=("seccomp", "urfave_cli_no_docs", "netgo", "osusergo"),
            cgo=True,
        ),
        GoTool(
            "crictl",
            "sigs.k8s.io/cri-tools",
            "v1.37.0",
            {"crictl": "sigs.k8s.io/cri-tools/cmd/crictl"},
            ldflags=("-X sigs.k8s.io/cri-tools/pkg/version.Version=v1.37.0",),
        ),
        GoTool(
            "etcd", "go.etcd.io/etcd/server/v3", "v3.7.0", {"etcd": "go.etcd.io/etcd/server/v3"}
        ),
        GoTool(
            "coredns",
            "github.com/coredns/coredns",
            "v1.14.6",
            {"coredns": "github.com/coredns/coredns"},
        ),
        GoTool(
            "local-path-provisioner",
            "github.com/rancher/local-path-provisioner",
            "v0.0.30",
            {"local-path-provisioner": "github.com/rancher/local-path-provisioner"},
            ldflags=("-X main.VERSION=v0.0.30",),
        ),
        GoTool(
            "otelcol",
            "go.opentelemetry.io/collector/otelcol",
            "v0.115.0",
            {"otelcol": "agentia.dev/kindbuild/otelcol"},
            own_main=True,  # main.go: the core distribution's parts that collector.yaml uses
        ),
        GoTool(
            # The network-policy controller only (kind_build.py; components/policy-engine):
            # v2.1.0 is the one v2 version the module proxy here serves.
            "kube-router",
            "github.com/cloudnativelabs/kube-router/v2",
            KUBE_ROUTER_VERSION,
            {"kube-router": "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"},
            ldflags=(
                f"-X {_KUBE_ROUTER_VERSION_PKG}.Version={KUBE_ROUTER_VERSION}",
                f"-X {_KUBE_ROUTER_VERSION_PKG}.BuildDate=1970-01-01T00:00:00Z",
            ),
        ),
        GoTool(
            # KEDA's three programs (kind_keda.py; the `full` overlay's autoscaling). Its
            # go.mod's one replace: temporal's SDK needs the proto annotations' later commit.
            "keda",
            "github.com/kedacore/keda/v2",
            f"v{KEDA_VERSION}",
            {
                "keda": "github.com/kedacore/keda/v2/cmd/operator",
                "keda-adapter": "github.com/kedacore/keda/v2/cmd/adapter",
                "keda-admission-webhooks": "github.com/kedacore/keda/v2/cmd/webhooks",
            },
            ldflags=(f"-X github.com/kedacore/keda/v2/version.Version={KEDA_VERSION}",),
            replace={
                "github.com/nexus-rpc/nexus-proto-annotations": (
                    "v0.1.1-0.20260629224316-835bd8d49cb4"
                )
            },
        ),
        GoTool(
            "helm",
            "helm.sh/helm/v3",
            "v3.22.0",
            {"helm": "helm.sh/helm/v3/cmd/helm"},
            ldflags=("-X helm.sh/helm/v3/internal/version.version=v3.22.0",),
        ),
    )
}


def go_env(refresh: bool = False) -> dict[str, str]:
    env = {**os.environ, "GOFLAGS": "-mod=mod" if refresh else "-mod=readonly"}
    env.pop("GOWORK", None)
    if refresh:  # the checksum database does not answer here; the proxy is trusted once
        env["GOSUMDB"] = "off"
    return env


def _need_go() -> str:
    go = shutil.which("go")
    if not go:
        raise GoBuildError(
            "Go is not installed: `agentia kind build` builds kind, Kubernetes, containerd, "
            "runc, etcd, CoreDNS, Helm and Dapr from their Go modules (Go >= 1.26, "
            "https://go.dev/dl/)"
        )
    return go


def wrapper_go_mod(tool: GoTool, go_line: str = "1.26.0") -> str:
    """The wrapper module's go.mod before `go mod tidy` (refresh mode)."""
    lines = [f"module agentia.dev/kindbuild/{tool.name}", "", f"go {go_line}", ""]
    lines += [f"require {tool.module} {tool.version}", ""]
    if tool.replace:
        lines += ["replace ("]
        lines += [f"\t{m} => {m} {v}" for m, v in sorted(tool.replace.items())]
        lines += [")", ""]
    lines += ["tool ("] + [f"\t{p}" for p in tool.programs.values()] + [")", ""]
    return "\n".join(lines)


def refresh_sums(tool: GoTool, progress: Progress) -> None:
    """Write the wrapper's go.mod and go.sum anew from the module proxy (review the diff)."""
    go = _need_go()
    tool.wrapper().mkdir(parents=True, exist_ok=True)
    if not tool.own_main:  # its go.mod is written by hand, next to its main.go
        (tool.wrapper() / "go.mod").write_text(wrapper_go_mod(tool))
    progress(f"resolving {tool.module}@{tool.version} (go mod tidy; trusts the proxy once)")
    proc = subprocess.run(
        [go, "mod", "tidy"],
        cwd=tool.wrapper(),
        env=go_env(refresh=True),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise GoBuildError(f"go mod tidy for {tool.name} failed:\n{proc.stderr[-2000:]}")


def _watch(proc: subprocess.Popen[str], what: str, progress: Progress, log: list[str]) -> int:
    """Wait for a `go build -v`, saying every 15 s how many packages it has compiled."""
    assert proc.stdout is not None
    started = time.monotonic()
    done = threading.Event()

    def ticker() -> None:
        while not done.wait(15):
            count = sum(1 for ln in log if not ln.startswith(("go: downloading", "#")))
            progress(f"  {what}: {count} packages, {time.monotonic() - started:.0f}s")

    thread = threading.Thread(target=ticker, daemon=True)
    thread.start()
    for line in proc.stdout:
        log.append(line.rstrip())
    code = proc.wait()
    done.set()
    return code


def go_build(
    tool: GoTool,
    progress: Progress,
    *,
    cwd: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Path:
    """The folder holding the tool's programs: cached, or built now (~seconds to ~40 min)."""
    out = tool.out_dir()
    if all((out / p).is_file() for p in tool.programs):
        return out
    go = _need_go()
    if os.environ.get("AGENTIA_KIND_REFRESH_SUMS"):
        refresh_sums(tool, progress)
    if not (tool.wrapper() / "go.sum").is_file():
        raise GoBuildError(f"{tool.wrapper()}/go.sum is missing (AGENTIA_KIND_REFRESH_SUMS=1)")
    progress(f"building {tool.name} {tool.version} from its Go module (once; cached in {out})")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{tool.name}-", dir=out.parent))
    env = {**go_env(), "CGO_ENABLED": "1" if tool.cgo else "0", **(extra_env or {})}
    ldflags = ["-s", "-w", *tool.ldflags] + ([STATIC_CGO] if tool.cgo else [])
    started = time.monotonic()
    try:
        for program, package in tool.programs.items():
            cmd = [go, "build", "-v", "-trimpath", "-ldflags", " ".join(ldflags)]
            if tool.tags:
                cmd += ["-tags", " ".join(tool.tags)]
            cmd += ["-o", str(tmp / program), package]
            log: list[str] = []
            proc = subprocess.Popen(
                ["nice", "-n", "19", *cmd],  # the host keeps CPU for everything else
                cwd=cwd or tool.wrapper(),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            if _watch(proc, program, progress, log) != 0:
                raise GoBuildError(f"building {program} failed:\n" + "\n".join(log[-40:]))
            progress(f"  built {program} ({(tmp / program).stat().st_size >> 20} MiB)")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
        for stale in out.parent.glob(f"{tool.name}-v*"):  # earlier keys: never used again
            if stale != out and stale.name.startswith(f"{tool.name}-{tool.version}-"):
                shutil.rmtree(stale, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    progress(f"{tool.name} built in {time.monotonic() - started:.0f}s")
    return out


def module_dir(tool: GoTool) -> Path:
    """Where Go's module cache holds the tool's upstream source (downloaded if needed)."""
    proc = subprocess.run(
        [_need_go(), "list", "-m", "-f", "{{.Dir}}", tool.module],
        cwd=tool.wrapper(),
        env=go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        subprocess.run(
            [_need_go(), "mod", "download", tool.module],
            cwd=tool.wrapper(),
            env=go_env(),
            capture_output=True,
            check=False,
        )
        proc = subprocess.run(
            [_need_go(), "list", "-m", "-f", "{{.Dir}}", tool.module],
            cwd=tool.wrapper(),
            env=go_env(),
            capture_output=True,
            text=True,
            check=False,
        )
    folder = Path(proc.stdout.strip())
    if proc.returncode != 0 or not folder.is_dir():
        raise GoBuildError(
            f"{tool.module}@{tool.version} is not in Go's module cache: {proc.stderr}"
        )
    return folder
