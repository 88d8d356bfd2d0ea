"""Schemathesis (its CLI, as a user runs it) against the gateway's served OpenAPI document,
through the real mesh: whatever it generates, valid or not, the gateway answers with no 5xx,
with a status code and content type the document declares, and a body matching it."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from agentia import names
from agentia_tools.runtime import local_keys

from .conftest import Infra, wait_for

pytestmark = pytest.mark.integration
GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


@pytest.mark.timeout(900)  # ~1 400 requests; slow when the machine is loaded
def test_gateway_conforms_to_its_openapi(
    infra: Infra, mesh_service: Callable[[str], None], tmp_path: Path
) -> None:
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.GATEWAY):
        mesh_service(app_id)
    # Its own key, with room for the thousand-odd requests it sends in a few seconds.
    name = f"schemathesis-{uuid.uuid4().hex[:6]}"
    key, _ = local_keys.create_key(infra.home, name, "write", rate_limit_per_minute=1_000_000)
    local_keys.reload_gateway_secrets(infra.home)
    wait_for(
        lambda: (
            httpx.post(f"{GATEWAY}/threads/search", json={}, headers={"x-api-key": key}).status_code
            == 200
        ),
        60,
        "the new key",
    )
    st = Path(sys.executable).with_name("schemathesis")
    # Crons it makes (some fire every second) would start runs for the rest of its run, and
    # its runs/wait calls would queue behind them (54 s to 475 s, run to run): delete them as
    # they appear.
    stop = threading.Event()
    sweeper = threading.Thread(target=_delete_crons, args=(key, stop), daemon=True)
    sweeper.start()
    proc = subprocess.Popen(
        [
            str(st),
            "run",
            f"{GATEWAY}/openapi.json",
            "--checks",
            CHECKS,
            "--header",
            f"x-api-key: {key}",
            "--max-examples",
            "6",
            "--seed",
            "20261124",
            "--generation-deterministic",
            # Streams follow a run to its end; their framing is tested in test_gateway_api.
            "--exclude-path-regex",
            "/stream$",
            "--request-timeout",
            "60",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=900)
    finally:
        proc.kill()
        stop.set()
        sweeper.join(timeout=30)
    # The last ones (a revoked key's crons also delete themselves at their next fire).
    _delete_crons(key, None)
    local_keys.revoke_key(infra.home, name)
    tail = out[-6000:].replace(key or "-", "***")
    assert proc.returncode == 0, tail


def _delete_crons(key: str, stop: threading.Event | None) -> None:
    """Delete the key's crons, every 2 s until ``stop`` is set (once when it is None)."""
    with httpx.Client(base_url=GATEWAY, headers={"x-api-key": key}, timeout=30) as client:
        while True:
            try:
                found = client.post("/runs/crons/search", json={"limit": 1000})
                for cron in found.json() if found.status_code == 200 else []:
                    client.delete(f"/runs/crons/{cron['cron_id']}")
            except httpx.HTTPError:
                pass  # the gateway is busy with schemathesis; try again
            if stop is None or stop.wait(2):
                return
