"""constraints.txt is the lock: every distribution the project needs is pinned in it, at the
version this virtualenv runs. A package upgraded by hand in a developer's venv (so the tests
pass here while a fresh install cannot resolve) fails this test instead of CI's install."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# What scripts/bootstrap.sh installs: `-e '.[a,b,…]'`.
_INSTALL = re.search(r"-e '\.\[([a-z,-]+)\]'", (ROOT / "scripts/bootstrap.sh").read_text())
assert _INSTALL, "scripts/bootstrap.sh installs no `-e '.[…]'`"
EXTRAS = tuple(_INSTALL.group(1).split(","))


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[canonicalize_name(name)] = version.strip()
    return out


def needed() -> set[str]:
    """The distributions agentia[EXTRAS] pulls in, transitively (markers evaluated)."""
    seen: set[str] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [("agentia", EXTRAS)]
    while todo:
        name, extras = todo.pop()
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            envs = [{**default_environment(), "extra": e} for e in ("", *extras)]
            if req.marker and not any(req.marker.evaluate(env) for env in envs):
                continue
            key = canonicalize_name(req.name)
            if key not in seen:
                seen.add(key)
                todo.append((req.name, tuple(req.extras)))
    return seen


def test_the_installed_project_declares_what_pyproject_does() -> None:
    """Else the closure below is computed from stale metadata (re-run scripts/bootstrap.sh)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    for extra in EXTRAS:
        declared |= {
            canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"][extra]
        }
    env = [{**default_environment(), "extra": e} for e in ("", *EXTRAS)]
    installed = {
        canonicalize_name(req.name)
        for req in map(Requirement, metadata.requires("agentia") or [])
        if not req.marker or any(req.marker.evaluate(e) for e in env)
    }
    assert installed == declared, "the virtualenv's agentia is stale: run scripts/bootstrap.sh"


def test_every_needed_distribution_is_pinned_at_the_installed_version() -> None:
    locked = pins()
    wrong = []
    for name in sorted(needed()):
        installed = metadata.version(name)
        if name not in locked:
            wrong.append(f"{name} {installed} is not pinned")
        elif locked[name] != installed:
            wrong.append(f"{name}: constraints.txt pins {locked[name]}, installed {installed}")
    assert not wrong, "constraints.txt is out of date:\n" + "\n".join(wrong)
