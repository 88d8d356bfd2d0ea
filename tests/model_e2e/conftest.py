"""The local-model suite: the mesh with its model server (`agentia up --model local`), a real
llama-server running SmolLM2-135M, driven through the gateway's public API.

Collected only with AGENTIA_MODEL_E2E=1 (`make test-model` sets it; tests/conftest.py
leaves this folder out otherwise): it needs `agentia model build` (about 17 minutes the
first time). Every wait is a condition polled up to a deadline, never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from agentia import names
from agentia.paths import agentia_home
from agentia_tools import model_build
from agentia_tools.runtime import local_keys, model_server, orchestrate
from agentia_tools.runtime.supervisor import Supervisor

GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
MODEL = f"compatible:{model_build.MODEL_NAME}"
# The suite's prices (USD per 1M tokens), set on the gateway by scripts/test-model.sh
# (AGENTIA_MODEL_PRICES): 100 µUSD a token in, 200 out, so one run costs cents.
PRICES = {
    "offline": {"input_usd_per_1m": "1.00", "output_usd_per_1m": "2.00"},
    MODEL: {"input_usd_per_1m": "100", "output_usd_per_1m": "200"},
}


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, KeyError, ValueError, IndexError) as exc:
            last = exc
        time.sleep(every)
    raise TimeoutError(f"{what} not within {timeout:.0f}s (last error: {last})")


@pytest.fixture(scope="session")
def local_mesh() -> Supervisor:
    """The mesh with the local model profile, brought up (or reconfigured) if need be."""
    os.environ.setdefault("AGENTIA_MODEL_PRICES", json.dumps(PRICES))
    home = agentia_home()
    probes = orchestrate.up(home, lambda m: print(f"[mesh] {m}", flush=True), "local")
    bad = [f"{p.name}: {p.detail}" for p in probes if not p.ok]
    assert not bad, f"the mesh is not healthy: {bad}"
    assert model_server.probe().ok
    return Supervisor(home)


@pytest.fixture(scope="session")
def new_key(local_mesh: Supervisor) -> Iterator[Callable[..., httpx.Client]]:
    """``new_key(cost_budget_micro_usd_per_day=...)``: a client with a fresh API key of its
    own, so each test's usage is its own."""
    home = agentia_home()
    made: list[str] = []
    clients: list[httpx.Client] = []

    def make(**limits: Any) -> httpx.Client:
        name = f"model-{uuid.uuid4().hex[:8]}"
        key, _ = local_keys.create_key(home, name, "write", **limits)
        local_keys.reload_gateway_secrets(home)
        made.append(name)
        client = httpx.Client(base_url=GATEWAY, headers={"x-api-key": key}, timeout=300)
        clients.append(client)
        wait_for(lambda: client.get("/usage").status_code == 200, 90, "the new key")
        return client

    yield make
    for client in clients:
        client.close()
    for name in made:
        local_keys.revoke_key(home, name)
    local_keys.reload_gateway_secrets(home)
