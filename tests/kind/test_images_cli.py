"""The image recipe, the kind cluster config and `agentia kind …`, checked offline.

No image is built here (no container engine): the Dockerfile is checked for what the
manifests rely on (user, pinned base, constraints, the service launcher), the cluster
config against kind's own config types and default node image at the pinned kind version.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agentia import names
from agentia.paths import repo_root
from agentia.serve import SERVICE_ENV, code_folders, install_code, main, service_command
from agentia_tools import kind
from agentia_tools.kind_render import UID, kind_dir

from .upstream import kind_config_fields, kind_default_node_image

DOCKERFILE = repo_root() / kind.DOCKERFILE
runner = CliRunner()


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return [(ln.split()[0].upper(), ln.partition(" ")[2]) for ln in lines]


def test_dockerfile_base_is_pinned_by_digest_and_user_is_the_manifests_uid() -> None:
    steps = _instructions()
    base = next(v for k, v in steps if k == "ARG" and v.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}", base)
    froms = [v for k, v in steps if k == "FROM"]
    assert all(v.startswith(("${PYTHON_IMAGE} AS", "runtime AS")) for v in froms), froms
    assert [v for k, v in steps if k == "USER"] == [f"{UID}:{UID}"]
    assert ("ARG", "SERVICE") in steps
    assert ("CMD", '["python", "-m", "agentia.serve"]') in steps


def test_dockerfile_installs_with_the_constraints_and_not_editable() -> None:
    text = DOCKERFILE.read_text()
    assert "PIP_CONSTRAINT=/src/constraints.txt" in text
    assert "pip install -e" not in text and "--editable" not in text
    assert "pip check" in text


def test_everything_the_dockerfile_copies_exists_and_is_not_ignored() -> None:
    ignore = [
        ln
        for ln in (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    for key, value in _instructions():
        if key != "COPY" or value.startswith("--from"):
            continue
        for src in value.split()[:-1]:
            assert (repo_root() / src).exists(), src
            included = False
            for pattern in ignore:  # the last matching pattern wins, as in .dockerignore
                if pattern == "**" or fnmatch.fnmatch(src, pattern.lstrip("!").rstrip("/")):
                    included = pattern.startswith("!")
            assert included, f"{src} is excluded from the build context"


@pytest.mark.parametrize("app_id", names.APP_IDS)
def test_the_dockerfile_copies_each_service_its_code_and_never_the_tooling(app_id: str) -> None:
    """`agentia.serve --install-code` in the image needs every folder the service runs."""
    copied = [
        value.split()[0].rstrip("/")
        for key, value in _instructions()
        if key == "COPY" and not value.startswith("--from")
    ]
    for folder in code_folders(app_id):
        assert any(folder == c or folder.startswith(c + "/") for c in copied), folder
    assert not any(c in ("src", "src/agentia_tools") for c in copied), copied


def test_install_code_copies_only_the_service_s_packages(tmp_path: Path) -> None:
    installed = install_code(names.AGENT_RUNNER, repo_root(), tmp_path)
    assert sorted(p.name for p in installed) == ["agentia", "agentia_runner", "agentia_workflows"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in installed)
    assert not list(tmp_path.rglob("__pycache__"))
    assert (tmp_path / "agentia" / "contracts" / "__init__.py").is_file()


@pytest.mark.parametrize("app_id", names.APP_IDS)
def test_the_image_launcher_runs_each_service_on_its_port(
    app_id: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(SERVICE_ENV, app_id)
    assert main(["--check"]) == 0
    assert capsys.readouterr().out.split()[1:] == service_command(app_id)[1:]
    assert str(names.PORTS[app_id].app) in service_command(app_id)


def test_the_image_launcher_refuses_an_unknown_service(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(SERVICE_ENV, "nope")
    assert main(["--check"]) == 2
    assert "unknown service 'nope'" in capsys.readouterr().err


def _keys(tree: object) -> set[str]:
    if isinstance(tree, dict):
        return set(tree) | {k for v in tree.values() for k in _keys(v)}
    if isinstance(tree, list):
        return {k for v in tree for k in _keys(v)}
    return set()


def test_the_cluster_config_uses_only_kind_fields_and_its_default_node_image() -> None:
    cluster = yaml.safe_load((kind_dir() / "cluster.yaml").read_text())
    assert cluster["apiVersion"] == "kind.x-k8s.io/v1alpha4" and cluster["name"] == kind.CLUSTER
    assert _keys(cluster) <= kind_config_fields() | {"kind", "apiVersion"}
    assert {n["image"] for n in cluster["nodes"]} == {kind_default_node_image()}


def test_render_prints_the_overlay() -> None:
    result = runner.invoke(kind.kind_app, ["render", "dev"])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"} == set(names.APP_IDS)


def test_an_unknown_overlay_is_refused() -> None:
    for args in (["render", "prod"], ["up", "--overlay", "prod"]):
        result = runner.invoke(kind.kind_app, args)
        assert result.exit_code == 2 and "unknown overlay 'prod'" in result.output, args


def test_up_names_the_missing_host_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No Docker, debootstrap or compiler (and no apt-get to install them): named, exit 1."""
    kind.ensure_kustomize()  # cached before PATH goes away
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("AGENTIA_KIND_CACHE", str(tmp_path / "cache"))
    result = runner.invoke(kind.kind_app, ["up"])
    assert result.exit_code == 1
    for package in ("docker.io", "debootstrap", "gcc"):
        assert package in result.output


def test_generate_check_agrees() -> None:
    result = runner.invoke(kind.kind_app, ["generate", "--check"])
    assert result.exit_code == 0, result.output
