"""Every shell and Python example in README.md and docs/*.md, run as written against the real
mesh, so the docs cannot drift from the code.

Each fenced ``bash``/``sh`` block runs whole, from the repository root, under ``bash -euo
pipefail``, with ``curl`` failing on an HTTP error (``--fail-with-body``): a 4xx or 5xx, a
command that is not there, an option the CLI refuses, all fail the block. A ``python``
block runs with the project's Python. An HTML comment
right before a block says otherwise, in words a reader can see in the source:

- ``<!-- example: skip — why -->``: not run here (it stops the mesh, builds a cluster, runs
  this very suite…); the reason is required;
- ``<!-- example: server http://127.0.0.1:PORT/PATH -->``: a block that serves until
  stopped: it runs in the background until that URL answers, then it is stopped.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agentia import names
from agentia.paths import repo_root
from agentia_tools.runtime import debian

from .conftest import Infra, wait_for

pytestmark = pytest.mark.integration
FENCE = re.compile(
    r"(?:<!--\s*example:\s*(?P<mark>[^>]*?)\s*-->\s*\n)?```(?P<lang>[a-z]*)[^\n]*\n(?P<body>.*?)```",
    re.S,
)
PREAMBLE = """\
curl() { command curl --fail-with-body --silent --show-error --max-time 300 "$@"; }
"""


def command(ex: Example) -> list[str]:
    """How a block runs: shell blocks under bash, Python blocks with the project's Python."""
    if ex.lang == "python":
        return [str(repo_root() / ".venv" / "bin" / "python"), "-c", ex.body]
    return ["bash", "-euo", "pipefail", "-c", PREAMBLE + ex.body]


RUNNERS = ("bash", "sh", "python")


@dataclass(frozen=True)
class Example:
    doc: str
    line: int
    body: str
    mark: str
    lang: str = "bash"

    @property
    def name(self) -> str:
        return f"{self.doc}:{self.line}"


def examples() -> list[Example]:
    root = repo_root()
    found = []
    for path in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = path.read_text()
        for m in FENCE.finditer(text):
            if m.group("lang") not in RUNNERS:
                continue
            line = text.count("\n", 0, m.start("body"))
            doc = str(path.relative_to(root))
            mark = (m.group("mark") or "").strip()
            found.append(Example(doc, line, m.group("body"), mark, m.group("lang")))
    return found


def test_every_skipped_example_says_why() -> None:
    for ex in examples():
        if ex.mark.startswith("skip"):
            assert len(ex.mark.removeprefix("skip").strip(" —-:")) > 10, ex.name


@pytest.fixture(scope="module")
def mesh(infra: Infra, mesh_service: Callable[[str], None]) -> Infra:
    for app_id in names.APP_IDS:
        mesh_service(app_id)
    debian.ensure({"jq": "jq"}, print, "the examples read JSON answers with jq")
    return infra


def _run_server(ex: Example, env: dict[str, str], url: str) -> None:
    proc = subprocess.Popen(
        command(ex),
        cwd=repo_root(),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def serving() -> bool:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise AssertionError(f"{ex.name}: the server exited: {out[-3000:]}")
            return httpx.get(url, timeout=2).status_code < 400

        wait_for(serving, 60, f"{ex.name}: {url}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "ex", [e for e in examples() if not e.mark.startswith("skip")], ids=lambda e: e.name
)
def test_the_example_runs_as_written(ex: Example, mesh: Infra) -> None:
    env = {**os.environ, "AGENTIA_HOME": str(mesh.home)}
    env.pop("AGENTIA_API_KEY", None)  # the examples use the local key, as a user's shell does
    if ex.mark.startswith("server"):
        _run_server(ex, env, ex.mark.removeprefix("server").strip())
        return
    proc = subprocess.run(
        command(ex),
        cwd=repo_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"{ex.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_docs_have_examples() -> None:
    assert len([e for e in examples() if not e.mark.startswith("skip")]) >= 10
    assert Path(repo_root() / "README.md").exists()
