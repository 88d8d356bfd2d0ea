"""The offline cluster build's pure parts, checked without Docker or a cluster: the runc
capability wrapper, the pod network's config, the build context, the cluster config,
the Go wrapper modules and the image recipes. (The real build and cluster are exercised
by `make test-kind`, tests/kind_e2e/.)
"""

from __future__ import annotations

import io
import json
import re
import stat
import subprocess
import tarfile
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from agentia import names
from agentia.paths import repo_root
from agentia_tools import (
    kind,
    kind_config,
    kind_context,
    kind_engine,
    kind_images,
    kind_runc,
    kind_up,
)
from agentia_tools.kind_build import INFRA_RECIPES, dockerfile_python_default, infra_images
from agentia_tools.kind_cni import conflist, masquerade_rules, pod_cidr, routes
from agentia_tools.kind_dapr_build import TOOL as DAPR_TOOL
from agentia_tools.kind_gobuild import K8S_STAGING_VERSION, TOOLS, wrapper_go_mod
from agentia_tools.kind_images import images_dir
from agentia_tools.kind_node import node_dir
from agentia_tools.kind_render import GATEWAY_NODE_PORT, kind_dir

from .upstream import kind_config_fields

LOCAL_MESH_PORTS = {8000, 8001, 8002, 8003, 8004, 4318, 9192, 5432, 6379, 5672, 15672}


# --- the runc wrapper -------------------------------------------------------------------


def test_the_bounding_set_is_read_and_the_missing_capabilities_named() -> None:
    status = "Name:\tx\nCapBnd:\t000001fffeffffff\n"
    mask = kind_runc.bounding_set(status)
    assert kind_runc.missing(mask, 40) == ["CAP_SYS_RESOURCE"]
    assert kind_runc.missing((1 << 41) - 1, 40) == []


def test_the_wrapper_finds_runcs_command_past_global_options() -> None:
    args = ["--root", "/run/docker/runtime-runc/moby", "--log", "x.log", "create", "--bundle", "b"]
    assert kind_runc.subcommand(args) == "create"
    assert kind_runc.subcommand(["--systemd-cgroup", "exec", "--process", "p", "id"]) == "exec"


def test_strip_removes_only_the_missing_capabilities() -> None:
    caps = {"bounding": ["CAP_SYS_RESOURCE", "CAP_NET_ADMIN"], "effective": ["CAP_NET_ADMIN"]}
    assert kind_runc.strip(caps, {"CAP_SYS_RESOURCE"})
    assert caps == {"bounding": ["CAP_NET_ADMIN"], "effective": ["CAP_NET_ADMIN"]}
    assert not kind_runc.strip(caps, {"CAP_SYS_RESOURCE"})


def test_the_installed_wrapper_drops_what_this_host_lacks_and_execs_the_real_runc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTIA_KIND_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "runc"
    fake.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\n')
    fake.chmod(0o755)
    wrapper = kind_engine.write_runc_wrapper(str(fake))
    assert stat.S_IMODE(wrapper.stat().st_mode) == 0o755
    every = [f"CAP_{n}" for n in kind_runc.CAPABILITIES]
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    config = {"process": {"capabilities": {k: every for k in ("bounding", "permitted")}}}
    (bundle / "config.json").write_text(json.dumps(config))
    args = ["--root", "/r", "create", "--bundle", str(bundle), "c1"]
    subprocess.run([str(wrapper), *args], check=True)
    assert (tmp_path / "args").read_text().split() == args
    kept = json.loads((bundle / "config.json").read_text())["process"]["capabilities"]
    lacking = set(kind_runc.host_missing())
    assert kept["bounding"] == [c for c in every if c not in lacking]


def test_the_engine_gets_the_wrapper_only_where_capabilities_are_missing(tmp_path: Path) -> None:
    wrapper = tmp_path / "w"
    assert kind_engine.dockerd_command([], wrapper) == ["dockerd"]
    cmd = kind_engine.dockerd_command(["CAP_SYS_RESOURCE"], wrapper)
    assert f"--add-runtime={kind_engine.RUNTIME_NAME}={wrapper}" in cmd
    assert f"--default-runtime={kind_engine.RUNTIME_NAME}" in cmd


def test_docker_is_asked_only_when_dockerd_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With dockerd installed, `agentia kind` starts it itself: `docker info` (which can
    take seconds) is not run; without it, a Docker engine that answers is enough."""
    asked: list[bool] = []

    def answers() -> bool:
        asked.append(True)
        return True

    monkeypatch.setattr(kind_engine, "docker_answers", answers)
    monkeypatch.setattr(kind_engine.debian, "present", lambda probe: probe == "dockerd")
    assert "dockerd" in kind_engine.host_probes() and not asked
    monkeypatch.setattr(kind_engine.debian, "present", lambda probe: False)
    assert "dockerd" not in kind_engine.host_probes() and asked


# --- the pod network --------------------------------------------------------------------


def _node(name: str, cidr: str, ip: str) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}]},
    }


def test_each_node_routes_to_the_others_pod_cidrs() -> None:
    nodes = [_node("cp", "10.244.0.0/24", "172.18.0.2"), _node("w1", "10.244.1.0/24", "172.18.0.3")]
    assert routes(nodes, "cp") == {"10.244.1.0/24": "172.18.0.3"}
    assert pod_cidr({"spec": {}}) is None


def test_the_cni_config_gives_pods_addresses_from_the_nodes_cidr() -> None:
    conf = conflist("10.244.2.0/24")
    ptp = conf["plugins"][0]
    assert ptp["type"] == "ptp" and ptp["ipam"]["ranges"] == [[{"subnet": "10.244.2.0/24"}]]
    assert {p["type"] for p in conf["plugins"]} == {"ptp", "portmap"}
    rules = masquerade_rules("10.244.2.0/24", "10.244.0.0/16")
    assert rules[0][-1] == "RETURN" and rules[-1][-1] == "MASQUERADE"


def _node_manifest(name: str) -> list[dict[str, object]]:
    text = (node_dir() / name).read_text()
    for placeholder in re.findall(r"@[A-Z_]+@", text):
        text = text.replace(placeholder, "agentia.local/x:1")
    text = text.replace("{{ .PodSubnet }}", "10.244.0.0/16")
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize("name", ["default-cni.yaml", "default-storage.yaml"])
def test_the_node_images_manifests_validate(name: str) -> None:
    for doc in _node_manifest(name):
        kubernetes_validate.validate(doc, "1.37.0", strict=True)
    if name == "default-cni.yaml":  # kind's switches for templating and the API endpoint
        text = (node_dir() / name).read_text()
        assert "would you kindly template this file" in text
        assert "would you kindly patch this file" in text


# --- the service image's build context ----------------------------------------------------


def test_the_context_honours_the_ignore_file(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for rel in (
        "src/agentia/a.py",
        "src/agentia_tools/cli.py",
        "src/agentia/x/__pycache__/a.pyc",
        ".git/config",
        ".agentia/secrets.json",
        "tests/t.py",
        "pyproject.toml",
        "deploy/docker/Dockerfile",
        "src/agentia/p.egg-info/P",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    ignore = (repo_root() / "deploy/docker/Dockerfile.dockerignore").read_text()
    (root / "deploy/docker/Dockerfile.dockerignore").write_text(ignore)
    assert kind_context.context_files(root) == ["pyproject.toml", "src/agentia/a.py"]
    with tarfile.open(fileobj=io.BytesIO(kind_context.context_tar(root))) as tar:
        members = sorted(tar.getnames())
    assert members == ["deploy/docker/Dockerfile", "pyproject.toml", "src/agentia/a.py"]


def test_the_real_context_has_no_secrets_or_history_and_all_the_dockerfile_copies() -> None:
    files = kind_context.context_files()
    assert not [f for f in files if f.startswith((".git", ".agentia", ".venv", "tests/"))]
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    tops = {f.split("/")[0] for f in files}
    assert {"src", "services", "workflows", "agents", "pyproject.toml"} <= tops
    # The images run the building blocks, never the tooling or the console.
    assert not [f for f in files if f.startswith(("src/agentia_tools/", "console/"))]


# --- the cluster config -----------------------------------------------------------------


def test_the_gateways_default_host_port_is_not_one_the_local_mesh_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(kind_config.GATEWAY_PORT_ENV, raising=False)
    assert kind_config.gateway_port() not in LOCAL_MESH_PORTS
    monkeypatch.setenv(kind_config.GATEWAY_PORT_ENV, "31999")
    assert kind_config.gateway_port() == 31999
    assert kind_config.gateway_port(32000) == 32000


def test_the_config_swaps_the_image_maps_the_port_and_patches_only_when_needed() -> None:
    plain = kind_config.cluster_config(31999)
    assert "kubeadmConfigPatches" not in plain and "containerdConfigPatches" not in plain
    mapping = plain["nodes"][0]["extraPortMappings"][0]
    assert mapping["containerPort"] == GATEWAY_NODE_PORT and mapping["hostPort"] == 31999
    built = kind_config.cluster_config(
        30800, "agentia.local/kind-node:v1", cgroup_v1=True, no_sys_resource=True
    )
    assert kind_config.node_images(built) == ["agentia.local/kind-node:v1"]
    kubelet = yaml.safe_load(built["kubeadmConfigPatches"][0])
    assert kubelet["kind"] == "KubeletConfiguration" and kubelet["failCgroupV1"] is False
    assert "restrict_oom_score_adj = true" in built["containerdConfigPatches"][0]
    keys = set(built) | {k for n in built["nodes"] for k in n}
    assert keys <= kind_config_fields() | {"kind", "apiVersion"}


def test_only_the_workers_mount_the_shared_folder_made_fresh_for_a_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTIA_HOME", str(tmp_path))
    stale = kind_config.shared_dir() / "rabbitmq" / "mnesia"
    stale.mkdir(parents=True)
    shared = kind_config.fresh_shared_dir()
    assert not stale.exists() and (shared / "rabbitmq").stat().st_mode & 0o777 == 0o777
    config = kind_config.cluster_config(30800, shared=shared)
    mounts = {n["role"]: n.get("extraMounts", []) for n in config["nodes"]}
    assert mounts["control-plane"] == []
    assert mounts["worker"] == [
        {"hostPath": str(shared), "containerPath": kind_config.SHARED_NODE_PATH}
    ]
    pv = next(
        d
        for d in yaml.safe_load_all((kind_dir() / "infra" / "shared-volumes.yaml").read_text())
        if d["kind"] == "PersistentVolume"
    )
    assert pv["spec"]["hostPath"]["path"].startswith(kind_config.SHARED_NODE_PATH + "/")


# --- Go wrapper modules and image recipes --------------------------------------------------


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_each_go_wrapper_pins_its_module_and_lists_its_programs(name: str) -> None:
    tool = TOOLS[name]
    text = (tool.wrapper() / "go.mod").read_text()
    module = rf"^\s*(require )?{re.escape(tool.module)} {tool.version}( // indirect)?$"
    assert re.search(module, text, re.M)
    for package in tool.programs.values():
        if tool.own_main:  # the wrapper's own main package
            assert text.startswith(f"module {package}\n")
            continue
        assert re.search(rf"^\s*(tool )?{re.escape(package)}$", text, re.M), package
    assert (tool.wrapper() / "go.sum").read_text().count(f"{tool.module} {tool.version} h1:")
    assert "agentia.dev/kindbuild/" in wrapper_go_mod(tool)


def test_kubernetes_takes_every_staging_module_from_the_proxy() -> None:
    text = (TOOLS["kubernetes"].wrapper() / "go.mod").read_text()
    replaced = re.findall(rf"^\s*(k8s\.io/\S+) => \1 {K8S_STAGING_VERSION}$", text, re.M)
    assert len(replaced) == len(TOOLS["kubernetes"].replace) >= 31


def test_the_clusters_dapr_repeats_the_local_runtimes_pins() -> None:
    def pins(path: Path) -> set[str]:
        text = path.read_text()
        return set(re.findall(r"^\s*(\S+ => \S+ \S+)$", text, re.M)) | set(
            re.findall(r"(github\.com/dapr/dapr v\S+)", text)
        )

    local = pins(repo_root() / "runtime/dapr/go.mod")
    assert local and local <= pins(DAPR_TOOL.wrapper() / "go.mod")


def test_image_recipes_start_from_the_local_base_and_pull_nothing() -> None:
    for dockerfile in sorted(images_dir().glob("*/Dockerfile")):
        froms = re.findall(r"^FROM (.+)$", dockerfile.read_text(), re.M)
        assert froms == ["${BASE}"], dockerfile


def test_every_infrastructure_image_has_a_recipe() -> None:
    assert set(infra_images()) == set(INFRA_RECIPES)
    for name in INFRA_RECIPES:
        assert (images_dir() / name / "Dockerfile").is_file()
    assert dockerfile_python_default().startswith("python:3.11")


def test_up_applies_stores_and_brokers_before_the_services() -> None:
    first, then = kind_up.split_services(kind.render("dev"))
    early = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(first) if d}
    late = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(then) if d}
    assert {("StatefulSet", s) for s in kind.INFRA} <= early
    assert ("Component", "pubsub") in early and ("Secret", "x") not in late
    assert late == {("Deployment", a) for a in names.APP_IDS} | {("CronJob", "scheduler-drain")}


def test_a_new_daprd_build_rolls_every_service_pod() -> None:
    """The sidecar image keeps its tag across our patches: its build key is on the pods."""

    def builds(sidecar_build: str) -> dict[str, str]:
        _, then = kind_up.split_services(kind.render("dev"), sidecar_build)
        out = {}
        for doc in yaml.safe_load_all(then):
            template = kind_up._template(doc)
            assert template is not None
            out[doc["metadata"]["name"]] = template["metadata"]["annotations"][
                kind_up.SIDECAR_BUILD
            ]
        return out

    assert set(builds("dapr-v1-a").values()) == {"dapr-v1-a"}
    assert set(builds("dapr-v1-a")) == {*names.APP_IDS, "scheduler-drain"}
    assert builds("dapr-v1-b") != builds("dapr-v1-a")


def test_a_changed_dapr_configuration_rolls_the_pods_that_use_it() -> None:
    def hashes(manifests: str) -> dict[str, str]:
        _, then = kind_up.split_services(manifests)
        out = {}
        for doc in yaml.safe_load_all(then):
            template = kind_up._template(doc)
            assert template is not None
            out[doc["metadata"]["name"]] = template["metadata"]["annotations"][kind_up.CONFIG_HASH]
        return out

    rendered = kind.render("dev")
    before = hashes(rendered)
    assert set(before) == {*names.APP_IDS, "scheduler-drain"}
    changed = rendered.replace("name: /internal/runs/check\n", "name: /internal/runs/checked\n")
    assert changed != rendered
    after = hashes(changed)
    assert {n for n in before if before[n] != after[n]} == {"gateway"}


# --- upstream where reachable, built here otherwise -------------------------------------

FAKE_DOCKER = r"""#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$1 $2" in
  "image inspect")
    case " $* " in
      *" ours:1 "*) [ "$4" = "{{.Id}}" ] || echo "abc123";;
      *" theirs:1 "*) [ "$4" = "{{.Id}}" ] || echo "<no value>";;
      *) exit 1;;
    esac;;
  "pull -q") [ "$3" = "reachable:1" ] || exit 1;;
esac
"""


def test_an_image_built_here_is_never_taken_for_the_pulled_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "log"))
    assert not kind_images.pullable("ours:1")  # present, labelled: ours, rebuilt if stale
    assert kind_images.pullable("theirs:1")  # present without the label: upstream's
    assert kind_images.pullable("reachable:1")  # absent, and a registry answers
    assert not kind_images.pullable("offline:1")  # absent, and no registry answers
    pulls = [ln for ln in (tmp_path / "log").read_text().splitlines() if ln.startswith("pull")]
    assert pulls == ["pull -q reachable:1", "pull -q offline:1"]
