"""The kind node image, built offline the way `kind build node-image` builds it.

kind's own build cannot work here (its base image clones from GitHub and pulls from Docker
Hub). So: a Debian bookworm rootfs with systemd and kind's node files (deploy/kind/recipes/images/
node/Dockerfile), containerd, runc and crictl and the Kubernetes node binaries built from
their Go modules; then, in a container of that image, its containerd imports the images
kubeadm and kind need (``registry.k8s.io/kube-*``, etcd, CoreDNS, pause, the pod network
and the volume provisioner), and the container is committed. The result is saved under
the kind cache too, so a wiped Docker gets it back with one ``docker load``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from agentia.paths import repo_root
from agentia_tools import kind_cni
from agentia_tools.kind_engine import kind_cache
from agentia_tools.kind_gobuild import K8S_VERSION, TOOLS, GoBuildError, go_build, module_dir
from agentia_tools.kind_images import (
    LOCAL,
    binary_image,
    debian_base,
    digest,
    docker,
    dockerfile_image,
    exists,
    load,
    save,
)

Progress = Callable[[str], None]
SUITE: Final = "bookworm"  # systemd 252: trixie's 257 refuses cgroup v1 hosts like these
PAUSE_VERSION: Final = "3.10.2"  # kubeadm 1.37's, built from the Kubernetes module's source
K8S_REGISTRY: Final = "registry.k8s.io"
NODE_REPOSITORY: Final = f"{LOCAL}/kind-node"


def node_dir() -> Path:
    return repo_root() / "deploy" / "kind" / "recipes" / "node"


def _pause(progress: Progress) -> Path:
    """Kubernetes' pause, compiled statically from build/pause/linux/pause.c."""
    source = module_dir(TOOLS["kubernetes"]) / "build" / "pause" / "linux" / "pause.c"
    out = kind_cache() / "bin" / f"pause-{PAUSE_VERSION}-{digest(source)}" / "pause"
    if out.is_file():
        return out
    if not shutil.which("gcc"):
        raise GoBuildError("gcc is needed to build pause (Debian: apt-get install gcc libc6-dev)")
    progress(f"compiling pause {PAUSE_VERSION}")
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{PAUSE_VERSION}-0"]
    proc = subprocess.run(
        [*cmd, "-o", str(out), str(source)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise GoBuildError(f"compiling pause failed:\n{proc.stderr[-1500:]}")
    return out


def kubernetes_images(base: str, progress: Progress) -> dict[str, str]:
    """Every image the node's containerd must hold: expected name -> built image."""
    k8s = go_build(TOOLS["kubernetes"], progress)
    etcd = go_build(TOOLS["etcd"], progress)
    coredns = go_build(TOOLS["coredns"], progress)
    provisioner = go_build(TOOLS["local-path-provisioner"], progress)
    images: dict[str, str] = {}
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        expected = f"{K8S_REGISTRY}/{name}:{K8S_VERSION}"
        images[expected] = binary_image(
            name, {f"usr/local/bin/{name}": k8s / name}, tags=[expected]
        )
    etcd_ref = f"{K8S_REGISTRY}/etcd:{TOOLS['etcd'].version.lstrip('v')}-0"
    images[etcd_ref] = binary_image("etcd", {"usr/local/bin/etcd": etcd / "etcd"}, tags=[etcd_ref])
    dns_ref = f"{K8S_REGISTRY}/coredns/coredns:{TOOLS['coredns'].version}"
    images[dns_ref] = binary_image(
        "coredns", {"coredns": coredns / "coredns"}, entrypoint=["/coredns"], tags=[dns_ref]
    )
    pause_ref = f"{K8S_REGISTRY}/pause:{PAUSE_VERSION}"
    images[pause_ref] = binary_image(
        "pause", {"pause": _pause(progress)}, entrypoint=["/pause"], user=65535, tags=[pause_ref]
    )
    proxy_ref = f"{K8S_REGISTRY}/kube-proxy:{K8S_VERSION}"
    cni = Path(kind_cni.__file__)
    tools = dockerfile_image(
        "kube-proxy",
        base,
        progress,
        files={"kube-proxy": k8s / "kube-proxy", "agentia-cni": cni},
        tags=[proxy_ref],
    )
    images[proxy_ref] = tools
    images[tools] = tools  # the pod network agent's image (the same tools), by its own tag
    lpp = TOOLS["local-path-provisioner"]
    images[f"{LOCAL}/local-path-provisioner:{lpp.version}"] = binary_image(
        "local-path-provisioner",
        {"local-path-provisioner": provisioner / "local-path-provisioner"},
        tags=[f"{LOCAL}/local-path-provisioner:{lpp.version}"],
    )
    images[base] = base  # the provisioner's helper pods: a shell, mkdir and rm
    return images


def _kind_files(into: Path) -> None:
    """kind's node files (images/base/files of the kind module), with kind's permissions."""
    source = module_dir(TOOLS["kind"]) / "images" / "base" / "files"
    shutil.copytree(source, into)
    for path in [into, *into.rglob("*")]:
        script = path.parent.name == "bin" and path.is_file()
        path.chmod(0o755 if path.is_dir() or script else 0o644)


def _manifest(name: str, images: dict[str, str], base: str) -> str:
    lpp = TOOLS["local-path-provisioner"].version
    cni_image = images[f"{K8S_REGISTRY}/kube-proxy:{K8S_VERSION}"]  # same tools image
    return (
        (node_dir() / name)
        .read_text()
        .replace("@CNI_IMAGE@", cni_image)
        .replace("@PROVISIONER_IMAGE@", f"{LOCAL}/local-path-provisioner:{lpp}")
        .replace("@HELPER_IMAGE@", base)
    )


def _node_base(base: str, progress: Progress) -> str:
    containerd = go_build(TOOLS["containerd"], progress)
    runc = go_build(TOOLS["runc"], progress)
    crictl = go_build(TOOLS["crictl"], progress)
    k8s = go_build(TOOLS["kubernetes"], progress)
    with tempfile.TemporaryDirectory(prefix="kind-files-", dir=kind_cache()) as tmp:
        files = Path(tmp) / "files"
        _kind_files(files)
        extra = {
            "kind-files": files,
            "bin/containerd": containerd / "containerd",
            "bin/ctr": containerd / "ctr",
            "bin/containerd-shim-runc-v2": containerd / "containerd-shim-runc-v2",
            "bin/crictl": crictl / "crictl",
            "sbin/runc": runc / "runc",
            **{f"kubernetes/{p}": k8s / p for p in ("kubeadm", "kubelet", "kubectl")},
        }
        return dockerfile_image(
            "node", base, progress, files=extra, args={"PAUSE_IMAGE": _pause_ref()}
        )


def _pause_ref() -> str:
    return f"{K8S_REGISTRY}/pause:{PAUSE_VERSION}"


def _exec(cid: str, *cmd: str, stdin: bytes | None = None) -> str:
    return docker("exec", *(["-i"] if stdin is not None else []), cid, *cmd, stdin=stdin)


def _import_images(cid: str, images: list[str], progress: Progress) -> None:
    """Start the build container's containerd and import the images into it."""
    _exec(cid, "bash", "-c", "nohup containerd > /var/log/containerd-build.log 2>&1 &")
    deadline = time.monotonic() + 60
    while subprocess.run(
        ["docker", "exec", cid, "ctr", "version"], capture_output=True, check=False
    ).returncode:
        if time.monotonic() > deadline:
            raise GoBuildError("containerd in the node build container did not start")
        time.sleep(1)
    progress(f"importing {len(images)} images into the node's containerd")
    save_proc = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
    imp = subprocess.run(
        [
            "docker",
            "exec",
            "-i",
            cid,
            "ctr",
            "--namespace=k8s.io",
            "images",
            "import",
            "--label=io.cri-containerd.pinned=pinned",
            "--all-platforms",
            "--no-unpack",
            "--digests",
            "-",
        ],
        stdin=save_proc.stdout,
        capture_output=True,
        check=False,
    )
    save_proc.wait()
    if imp.returncode != 0 or save_proc.returncode != 0:
        raise GoBuildError(f"importing the images into the node failed: {imp.stderr[-1500:]!r}")
    _exec(cid, "pkill", "containerd")


def node_image(progress: Progress) -> str:
    """The node image's reference: present, loaded from the cache, or built now."""
    base = debian_base(SUITE, progress)
    images = kubernetes_images(base, progress)
    node_base = _node_base(base, progress)
    key = digest(node_base, *sorted(images.values()), node_dir(), K8S_VERSION)
    ref = f"{NODE_REPOSITORY}:{K8S_VERSION}-{key}"
    saved = kind_cache() / "images" / f"kind-node-{K8S_VERSION}-{key}.tar"
    if exists(ref):
        return ref
    if saved.is_file():
        load(saved, progress)
        if exists(ref):
            return ref
    progress(f"assembling the node image {ref}")
    cid = docker(
        "run", "-d", "--privileged", "--entrypoint", "sleep", node_base, "infinity"
    ).strip()
    try:
        _import_images(cid, sorted(images), progress)
        for name in ("default-cni.yaml", "default-storage.yaml"):
            text = _manifest(name, images, base).encode()
            _exec(
                cid,
                "bash",
                "-c",
                f"mkdir -p /kind/manifests && cat > /kind/manifests/{name}",
                stdin=text,
            )
        _exec(cid, "bash", "-c", f"echo {K8S_VERSION} > /kind/version")
        docker(
            "commit",
            "--change",
            'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
            "--change",
            "CMD []",  # the build container ran `sleep infinity`; STOPSIGNAL is kept
            cid,
            ref,
        )
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", cid], capture_output=True, check=False)
    save([ref], saved, progress)
    for stale in saved.parent.glob("kind-node-*.tar"):  # earlier keys: never used again
        if stale != saved:
            stale.unlink()
    return ref
