"""Schemathesis (its CLI, as a user runs it) against the gateway's served OpenAPI document,
through the real mesh: whatever it generates, valid or not, the gateway answers with no 5xx,
with a status code and content type the document declares, and a body matching it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from agentia import names
from agentia.runtime import local_keys

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
    result = subprocess.run(
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
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    # Crons it made would fire every second for the rest of the suite: delete them now (a
    # revoked key's crons also delete themselves at their next fire).
    with httpx.Client(base_url=GATEWAY, headers={"x-api-key": key}, timeout=30) as client:
        found = client.post("/runs/crons/search", json={"limit": 1000})
        for cron in found.json() if found.status_code == 200 else []:
            client.delete(f"/runs/crons/{cron['cron_id']}")
    local_keys.revoke_key(infra.home, name)
    tail = (result.stdout + result.stderr)[-6000:].replace(key or "-", "***")
    assert result.returncode == 0, tail
