"""The kind cluster config `agentia kind up` hands to kind: deploy/kind/cluster.yaml plus
what this host and the chosen images need, decided at run time (never a hand edit).

- the node image: cluster.yaml's (kind's default, pulled) or the one built here;
- the gateway's host port (configurable; the local mesh owns 8000);
- on hosts with cgroup v1, kubelet 1.37 refuses to start unless ``failCgroupV1: false``;
- where the nodes lack CAP_SYS_RESOURCE, containerd must not try to lower OOM scores
  (``restrict_oom_score_adj``), or every pod with a negative score fails to start;
- one host folder mounted into both workers at SHARED_NODE_PATH: a volume there
  (infra/shared-volumes.yaml) follows its pod to the other worker, as a network disk would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

import yaml

from agentia.paths import agentia_home
from agentia_tools.kind_render import GATEWAY_NODE_PORT, kind_dir

DEFAULT_GATEWAY_PORT: Final = 30800  # not the local mesh's 8000
GATEWAY_PORT_ENV: Final = "AGENTIA_KIND_GATEWAY_PORT"
KUBELET_CGROUP_V1_PATCH: Final = (
    "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfailCgroupV1: false\n"
)
CONTAINERD_OOM_PATCH: Final = (
    '[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n'
)
SHARED_NODE_PATH: Final = "/var/agentia-shared"  # in each worker; infra/shared-volumes.yaml
SHARED_VOLUMES: Final = ("rabbitmq",)  # one folder each, writable by the pod's user
Doc = dict[str, Any]


def shared_dir() -> Path:
    """The host folder both workers mount at SHARED_NODE_PATH."""
    return agentia_home() / "kind" / "shared-volumes"


def fresh_shared_dir() -> Path:
    """An empty shared folder for a new cluster (a broker's data from an earlier cluster
    holds that cluster's users and passwords), with one world-writable folder per volume:
    a hostPath volume gets no fsGroup, and the broker runs as its own non-root user."""
    root = shared_dir()
    shutil.rmtree(root, ignore_errors=True)
    for name in SHARED_VOLUMES:
        (root / name).mkdir(parents=True)
        (root / name).chmod(0o777)
    return root


def gateway_port(option: int | None = None) -> int:
    """The host port of the cluster's gateway: the option, else $AGENTIA_KIND_GATEWAY_PORT."""
    if option is not None:
        return option
    return int(os.environ.get(GATEWAY_PORT_ENV) or DEFAULT_GATEWAY_PORT)


def host_facts(image: str) -> dict[str, bool]:
    """What a privileged container of ``image`` sees: cgroup v1? CAP_SYS_RESOURCE missing?"""
    script = (
        "test -e /sys/fs/cgroup/cgroup.controllers && echo v2 || echo v1; "
        "grep CapBnd /proc/self/status"
    )
    proc = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--privileged",
            "--network=none",
            "--entrypoint",
            "sh",
            image,
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = proc.stdout.split()
    mask = int(lines[-1], 16) if proc.returncode == 0 and len(lines) >= 3 else -1
    sys_resource = 24
    return {
        "cgroup_v1": bool(lines) and lines[0] == "v1",
        "no_sys_resource": mask >= 0 and not mask >> sys_resource & 1,
    }


def cluster_config(
    port: int,
    node_image: str | None = None,
    *,
    cgroup_v1: bool = False,
    no_sys_resource: bool = False,
    shared: Path | None = None,
) -> Doc:
    """cluster.yaml with the node image, the gateway's host port, the host's patches and
    the shared folder mounted into every worker."""
    config: Doc = yaml.safe_load((kind_dir() / "cluster.yaml").read_text())
    for node in config["nodes"]:
        if node_image:
            node["image"] = node_image
        if node["role"] == "worker":
            mount = {"hostPath": str(shared or shared_dir()), "containerPath": SHARED_NODE_PATH}
            node.setdefault("extraMounts", []).append(mount)
        for mapping in node.get("extraPortMappings", []):
            if mapping["containerPort"] == GATEWAY_NODE_PORT:
                mapping["hostPort"] = port
    if cgroup_v1:
        config.setdefault("kubeadmConfigPatches", []).append(KUBELET_CGROUP_V1_PATCH)
    if no_sys_resource:
        config.setdefault("containerdConfigPatches", []).append(CONTAINERD_OOM_PATCH)
    return config


def node_images(config: Doc) -> list[str]:
    return sorted({n["image"] for n in config["nodes"]})
