"""`agentia kind up` against stand-ins for docker, kind, kubectl and helm.

The stand-ins only record their arguments (and what is piped to `kubectl apply` and
`docker build`), and the build plan is a fixed one: this checks the sequence `up` drives
and what it sends. The real cluster is `make test-kind`'s (tests/kind_e2e/).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agentia import names
from agentia.apikeys import KeyRing
from agentia_tools import kind, kind_build, kind_up
from agentia_tools.runtime.daprbin import DAPR_VERSION

LOCAL_PYTHON = "agentia.local/python:abc"
REAL_BUILD = kind_build.build

FAKE = r"""#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_LOG"
case "$(basename "$0") $1 $2" in
  "docker build"*) cat > "$FAKE_CONTEXT";;
  "docker image inspect")
    eval "last=\${$#}"
    echo "sha256:$(echo "$last" | sha256sum | cut -c1-64)";;
  "kind get clusters") ;;
  "kind get nodes") printf 'agentia-control-plane\nagentia-worker\nagentia-worker2\n';;
  "kubectl --context kind-agentia")
    case "$3" in
      get) exit 1;;
      apply) if [ "$5" = "-" ]; then cat >> "$FAKE_APPLIED"; echo --- >> "$FAKE_APPLIED"; fi;;
    esac;;
esac
exit 0
"""


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    kind.ensure_kustomize()  # cached before PATH is narrowed
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("docker", "kind", "kubectl", "helm"):
        path = bin_dir / tool
        path.write_text(FAKE)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    log, applied = tmp_path / "calls.log", tmp_path / "applied.yaml"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_APPLIED", str(applied))
    monkeypatch.setenv("FAKE_CONTEXT", str(tmp_path / "context.tar"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AGENTIA_KIND_GATEWAY_PORT", raising=False)
    monkeypatch.setenv("AGENTIA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AGENTIA_KIND_CACHE", str(tmp_path / "kind-cache"))  # no real tools
    monkeypatch.setattr(kind, "_wait_for_gateway", lambda url: True)
    plan = kind_build.Plan(
        python_image=LOCAL_PYTHON,
        load=["rabbitmq:3.13.7"],
        every_node=["cloudnativelabs/kube-router:v2.1.0"],
    )
    monkeypatch.setattr(kind_build, "build", lambda progress, timings=None: plan)
    monkeypatch.setattr(kind_build, "dapr_repo_reachable", lambda: True)
    monkeypatch.setattr(kind, "pullable", lambda ref, timeout_s=60: True)  # KEDA's chart
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "site.crt").write_text("SITE-CA-PEM")  # one line, for the log
    monkeypatch.setattr(kind_up, "SITE_CA_DIR", tmp_path / "ca")
    return log, applied


def test_up_drives_the_tools_in_order_and_applies_id_tagged_images(
    fake_tools: tuple[Path, Path], tmp_path: Path
) -> None:
    log, applied = fake_tools
    result = CliRunner().invoke(kind.kind_app, ["up", "--overlay", "full"])
    assert result.exit_code == 0, result.output
    calls = log.read_text().splitlines()

    def first(prefix: str) -> int:
        return next(i for i, c in enumerate(calls) if c.startswith(prefix))

    assert first("kind create cluster --name agentia") < first("helm upgrade --install dapr")
    assert f"--version {DAPR_VERSION}" in calls[first("helm upgrade --install dapr")]
    assert f"--version {kind.KEDA_VERSION}" in calls[first("helm upgrade --install keda")]
    assert first("helm upgrade --install keda") < first("kubectl --context kind-agentia apply")
    # Every kubectl and helm call names the kind cluster's context.
    assert all("--context kind-agentia" in c for c in calls if c.startswith("kubectl"))
    assert all("--kube-context kind-agentia" in c for c in calls if c.startswith("helm upgrade"))
    builds = [c for c in calls if c.startswith("docker build")]
    assert len(builds) == len(names.APP_IDS)
    assert all("-f deploy/docker/Dockerfile" in c and c.endswith(" -") for c in builds)
    # The local Python base where the official one cannot be pulled; a context of only
    # what the ignore file lets in, whichever builder runs.
    assert all(f"PYTHON_IMAGE={LOCAL_PYTHON}" in c for c in builds)
    assert all("EXTRA_CA_CERTS=SITE-CA-PEM" in c for c in builds)  # the site's CAs, for pip
    with tarfile.open(fileobj=io.BytesIO((tmp_path / "context.tar").read_bytes())) as context:
        sent = context.getnames()
    assert "deploy/docker/Dockerfile" in sent and "src/agentia/serve.py" in sent
    assert not [f for f in sent if f.startswith("src/agentia_tools/")]
    assert not [n for n in sent if n.startswith((".git", ".agentia", ".venv"))]

    docs = [d for d in yaml.safe_load_all(applied.read_text()) if d]
    secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    assert {names.SECRET_POSTGRES_URL, names.SECRET_DAPR_API_TOKEN, "agentia-infra"} <= secrets
    # A write key for this machine: its hash in the cluster, its plaintext only here (0600).
    ring_doc = next(d for d in docs if d["metadata"]["name"] == names.SECRET_GATEWAY_API_KEYS)
    ring = KeyRing.from_secret(ring_doc["stringData"][names.SECRET_GATEWAY_API_KEYS])
    key = kind.kind_key_path().read_text().strip()
    record = ring.verify(key)
    assert record is not None and record.scope == "write" and key not in str(ring_doc)
    assert stat.S_IMODE(kind.kind_key_path().stat().st_mode) == 0o600
    images = {
        c["image"]
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] in names.APP_IDS
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    load = next(c for c in calls if c.startswith("kind load docker-image"))
    assert "rabbitmq:3.13.7" in load.split()  # the plan's images and the services', at once
    assert load.endswith("--nodes agentia-worker,agentia-worker2")  # not the control plane
    # The policy engine's DaemonSet runs on every node: its image goes to all of them.
    agent = "kind load docker-image cloudnativelabs/kube-router:v2.1.0 --name agentia"
    assert f"{agent} --nodes agentia-control-plane,agentia-worker,agentia-worker2" in calls
    assert "kube-router" not in load
    assert first(
        "kubectl --context kind-agentia rollout status daemonset/kube-router -n kube-system"
    ) > first("kubectl --context kind-agentia apply")
    for app_id in names.APP_IDS:
        digest = hashlib.sha256(f"agentia/{app_id}:dev\n".encode()).hexdigest()[:12]
        tagged = f"agentia/{app_id}:{digest}"
        assert tagged in images and tagged in load.split()
    for app_id in names.APP_IDS:
        assert any(f"rollout status deployment/{app_id}" in c for c in calls), app_id
    assert "gateway: http://127.0.0.1:30800" in result.output
    # The cluster config kind got: the gateway on the configured host port, not 8000.
    assert "--config" in calls[first("kind create cluster")]


def test_up_stops_when_docker_does_not_answer(
    fake_tools: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real build plan, up to the engine check: no dockerd on this narrowed PATH."""
    monkeypatch.setattr(kind_build, "build", REAL_BUILD)
    monkeypatch.setattr(kind_build.kind_engine, "ensure_host_packages", lambda progress: None)
    docker = tmp_path / "bin" / "docker"
    docker.write_text('#!/bin/sh\n[ "$1" = info ] && exit 1\nexit 0\n')
    result = CliRunner().invoke(kind.kind_app, ["up"])
    assert result.exit_code == 1
    assert "Docker engine is not answering" in result.output


def test_down_deletes_the_cluster_by_name(fake_tools: tuple[Path, Path]) -> None:
    log, _ = fake_tools
    result = CliRunner().invoke(kind.kind_app, ["down"])
    assert result.exit_code == 0, result.output
    assert log.read_text().splitlines() == ["kind delete cluster --name agentia"]


def test_down_without_kind_names_the_missing_tool(
    fake_tools: tuple[Path, Path], tmp_path: Path
) -> None:
    (tmp_path / "bin" / "kind").unlink()
    result = CliRunner().invoke(kind.kind_app, ["down"])
    assert result.exit_code == 1
    assert "not found on PATH: kind" in result.output and "Traceback" not in result.output


def test_images_builds_and_loads_each_service_or_asks_for_a_cluster(
    fake_tools: tuple[Path, Path], tmp_path: Path
) -> None:
    log, _ = fake_tools
    result = CliRunner().invoke(kind.kind_app, ["images"])
    assert result.exit_code == 1
    assert "no kind cluster 'agentia'" in result.output
    with_cluster = FAKE.replace('"kind get clusters") ;;', '"kind get clusters") echo agentia;;')
    (tmp_path / "bin" / "kind").write_text(with_cluster)
    result = CliRunner().invoke(kind.kind_app, ["images"])
    assert result.exit_code == 0, result.output
    calls = log.read_text().splitlines()
    assert len([c for c in calls if c.startswith("docker build")]) == len(names.APP_IDS)
    loads = [c for c in calls if c.startswith("kind load docker-image")]
    assert len(loads) == 1 and all(f"agentia/{a}:" in loads[0] for a in names.APP_IDS)
    for app_id in names.APP_IDS:
        assert f"{app_id}: agentia/{app_id}:" in result.output


def test_the_machines_kind_key_gets_a_rate_for_the_chaos_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kind up` makes this machine's key with a rate the chaos load and the scale bench
    need, and gives an existing key (made before) that rate without changing the key."""
    monkeypatch.setenv("AGENTIA_HOME", str(tmp_path))
    monkeypatch.setattr(kind, "_existing_secret", lambda name: {})
    ring = KeyRing.from_secret(kind._api_keys())
    (record,) = ring.keys.values()
    assert record.name == kind.KIND_KEY_NAME
    assert record.rate_limit_per_minute == kind.KIND_KEY_RATE_PER_MINUTE
    key = kind.kind_key_path().read_text().strip()
    older = {**ring.keys[record.id].model_dump(), "rate_limit_per_minute": None}
    stored = KeyRing(keys={record.id: older}).to_secret()
    monkeypatch.setattr(kind, "_existing_secret", lambda name: {name: stored})
    again = KeyRing.from_secret(kind._api_keys())
    assert again.keys[record.id].rate_limit_per_minute == kind.KIND_KEY_RATE_PER_MINUTE
    assert kind.kind_key_path().read_text().strip() == key, "the key itself is kept"
