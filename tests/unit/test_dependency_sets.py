"""Each service's image installs the building blocks' dependencies and the set named like its
app id (pyproject.toml), nothing else: every third-party module a service's code imports
must come from that closure, and the building blocks' own imports from theirs alone.

Read from the source (no import runs) and this virtualenv's package metadata."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from agentia import names
from agentia.paths import repo_root
from agentia.serve import code_folders

ROOT = repo_root()
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
FIRST_PARTY = ("agentia", "agentia_tools", *names.SERVICE_MODULES.values(), "agentia_workflows")


def closure(requirements: list[str]) -> set[str]:
    """The distributions ``requirements`` pull in, transitively, markers evaluated."""
    env = default_environment()
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        if req.marker and not any(
            req.marker.evaluate({**env, "extra": e}) for e in ("", *req.extras)
        ):
            continue
        key = canonicalize_name(req.name)
        if key in seen:
            continue
        seen.add(key)
        for text in metadata.requires(req.name) or []:
            sub = Requirement(text)
            if sub.marker and not any(
                sub.marker.evaluate({**env, "extra": e}) for e in ("", *req.extras)
            ):
                continue
            todo.append(sub)
    return seen


def third_party(folders: list[Path]) -> dict[str, str]:
    """Top-level third-party modules imported by the code in ``folders``, with one file each."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    tops = [a.name.split(".")[0] for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    tops = [node.module.split(".")[0]]
                else:
                    continue
                for top in tops:
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def missing(folders: list[Path], requirements: list[str]) -> list[str]:
    allowed = closure(requirements)
    providers = metadata.packages_distributions()
    wrong = []
    for module, where in sorted(third_party(folders).items()):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        if not dists & allowed:
            wrong.append(f"{module} (imported in {where}; from {sorted(dists) or '?'})")
    return wrong


def test_the_building_blocks_need_only_the_base_dependencies() -> None:
    assert not missing([ROOT / "src/agentia"], PROJECT["dependencies"])


@pytest.mark.parametrize("app_id", names.APP_IDS)
def test_each_service_needs_only_the_blocks_and_its_own_set(app_id: str) -> None:
    extras = PROJECT["optional-dependencies"]
    assert app_id in extras, f"pyproject.toml has no dependency set named {app_id}"
    code = [ROOT / folder for folder in code_folders(app_id)[1:]]  # [0]: the blocks
    assert all(folder.is_dir() for folder in code), code
    wrong = missing(code, [*PROJECT["dependencies"], *extras[app_id]])
    assert not wrong, f"{app_id}'s image would lack: " + "; ".join(wrong)


def test_the_tooling_set_covers_the_tooling() -> None:
    requirements = [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["tools"]]
    assert not missing([ROOT / "src/agentia_tools"], requirements)


def test_a_service_set_is_smaller_than_everything() -> None:
    """The point of the sets: no service image carries another's heavy dependencies."""
    extras = PROJECT["optional-dependencies"]
    gateway = closure([*PROJECT["dependencies"], *extras[names.GATEWAY]])
    assert "onnxruntime" not in gateway and "openai-agents" not in gateway
    assert "supervisor" not in gateway and "typer" not in gateway
