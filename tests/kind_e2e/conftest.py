"""The kind end-to-end suite: the real cluster `agentia kind up` made, through its gateway.

Collected only with AGENTIA_KIND_E2E=1 (`make test-kind` sets it after `agentia kind up`;
tests/conftest.py leaves this folder out otherwise), since it needs a built cluster
(minutes) and a Docker engine. Every wait is a condition polled up to a deadline, never a
fixed sleep.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from agentia_tools.kind import kind_key_path
from agentia_tools.kind_build import tool_path
from agentia_tools.kind_render import NAMESPACE
from agentia_tools.kind_up import CONTEXT, gateway_url


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 1.0) -> Any:
    """Poll ``check`` until it returns something truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, subprocess.CalledProcessError, KeyError, ValueError) as exc:
            last = exc
        time.sleep(every)
    raise TimeoutError(f"{what} not within {timeout:.0f}s (last error: {last})")


def kubectl(*args: str) -> str:
    tool = str(tool_path("kubectl", print, build=False))
    return subprocess.run(
        [tool, "--context", CONTEXT, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def kubectl_json(*args: str) -> dict[str, Any]:
    return dict(json.loads(kubectl(*args, "-o", "json")))


@pytest.fixture(scope="session")
def gateway() -> Iterator[httpx.Client]:
    """An authenticated client of the cluster's gateway (the key `kind up` keeps here)."""
    if not kind_key_path().exists():
        pytest.fail(f"no {kind_key_path()}: run `agentia kind up` first")
    key = kind_key_path().read_text().strip()
    with httpx.Client(base_url=gateway_url(), headers={"x-api-key": key}, timeout=120) as client:
        wait_for(lambda: client.get("/healthz").status_code == 200, 120, "the gateway")
        yield client


__all__ = ["NAMESPACE", "kubectl", "kubectl_json", "wait_for"]
