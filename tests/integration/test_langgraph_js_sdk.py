"""LangGraph's JS/TS SDK (``@langchain/langgraph-sdk`` from npm, pinned by
tests/clients/js/package-lock.json), unchanged, run with node against the gateway of the real
mesh: tests/clients/js/sdk.test.mjs drives every method it offers."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from agentia import names
from agentia.paths import repo_root
from agentia_tools.runtime import local_keys

from .conftest import Infra, wait_for

pytestmark = pytest.mark.integration
GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"


def js_dir() -> Path:
    return repo_root() / "tests" / "clients" / "js"


def ensure_installed(folder: Path) -> None:
    """npm ci once (the lock file pins the SDK); skipped when node_modules matches it."""
    npm = shutil.which("npm")
    assert npm and shutil.which("node"), "node and npm are needed (Debian's nodejs, npm)"
    stamp = folder / "node_modules" / ".agentia-lock"
    lock = (folder / "package-lock.json").read_text()
    if stamp.exists() and stamp.read_text() == lock:
        return
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=folder, check=True, timeout=600)
    stamp.write_text(lock)


@pytest.mark.timeout(900)
def test_every_js_sdk_method(infra: Infra, mesh_service: Callable[[str], None]) -> None:
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.SCHEDULER, names.GATEWAY):
        mesh_service(app_id)
    key = local_keys.read_local_key(infra.home)
    assert key
    wait_for(
        lambda: (
            httpx.post(f"{GATEWAY}/threads/search", json={}, headers={"x-api-key": key}).status_code
            == 200
        ),
        60,
        "the gateway",
    )
    folder = js_dir()
    ensure_installed(folder)
    env = {**os.environ, "AGENTIA_GATEWAY_URL": GATEWAY, "AGENTIA_API_KEY": key}
    proc = subprocess.run(
        ["node", "--test", "--test-reporter=tap", "sdk.test.mjs"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report[-6000:]
    assert "# fail 0" in report and "# pass 5" in report, report[-3000:]
