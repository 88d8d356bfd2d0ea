"""Fixtures for the console's end-to-end tests: the real mesh services the console needs
(started with the integration fixtures), the console itself (`agentia console`, a real
Streamlit process), and Debian's Chromium driven by Playwright (never a downloaded browser).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, expect, sync_playwright

from agentia import names
from agentia.paths import repo_root
from agentia_tools.runtime import local_keys
from agentia_tools.runtime.browser import ensure_chromium
from agentia_tools.runtime.infra import InfraError
from tests.integration.conftest import Infra, infra, mesh_service, wait_for

__all__ = ["infra", "mesh_service"]  # the integration fixtures, used here as they are

GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
CONSOLE_PORT = 8501
CONSOLE = f"http://127.0.0.1:{CONSOLE_PORT}"
ARTIFACTS = repo_root() / "test-artifacts" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed once (as root) when missing; a clear failure otherwise."""
    try:
        return ensure_chromium(lambda m: print(f"[chromium] {m}", flush=True))
    except InfraError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def api(infra: Infra, mesh_service: Callable[[str], None]) -> Iterator[httpx.Client]:
    """The gateway's public API with the local key, and the services behind what the
    console shows: agents and threads (agent-runner, memory), workflows, schedules."""
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.SCHEDULER, names.GATEWAY):
        started = time.monotonic()
        mesh_service(app_id)
        print(f"[console] {app_id} up in {time.monotonic() - started:.1f}s", flush=True)
    key = local_keys.read_local_key(infra.home)
    assert key, "no local API key"
    with httpx.Client(base_url=GATEWAY, headers={"x-api-key": key}, timeout=60) as client:
        wait_for(lambda: client.get("/workflows?page_size=1").status_code == 200, 60, "gateway")
        yield client


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def console(infra: Infra, api: httpx.Client) -> Iterator[str]:
    """`agentia console` as a user starts it; stopped (and waited for) afterwards."""
    if _port_taken(CONSOLE_PORT):
        pytest.fail(f"port {CONSOLE_PORT} is taken: another console is running", pytrace=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AGENTIA_HOME": str(infra.home)}
    env.pop("AGENTIA_API_KEY", None)  # the console must find the local key itself
    log = (ARTIFACTS / "console.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentia_tools", "console", "--port", str(CONSOLE_PORT)],
        cwd=repo_root(),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the console exited ({proc.returncode}); see {log.name}")
        return httpx.get(f"{CONSOLE}/_stcore/health", timeout=2).text.strip() == "ok"

    try:
        started = time.monotonic()
        wait_for(healthy, 30, "the console")
        print(f"[console] console up in {time.monotonic() - started:.1f}s", flush=True)
        yield CONSOLE
    finally:
        stopping = time.monotonic()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        print(f"[console] stopped in {time.monotonic() - stopping:.1f}s")


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(
    playwright: Playwright, chromium: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrowserContext]:
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh user-data-dir
        executable_path=str(chromium),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(30_000)
    # Assertions wait as long as actions do: an answer takes seconds on 2 loaded cores.
    expect.set_options(timeout=30_000)
    yield context
    context.close()


@pytest.fixture
def page(browser: BrowserContext, console: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page (a new Streamlit session) on the console; a screenshot is kept of how
    it ended, as test-artifacts/console/<test>-end.png."""
    tab = browser.new_page()
    started = time.monotonic()
    tab.goto(console)
    tab.get_by_text("Agentia console").first.wait_for()
    print(f"[console] page ready in {time.monotonic() - started:.1f}s")
    yield tab
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"), full_page=True)
    tab.close()
