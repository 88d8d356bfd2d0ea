"""The whole mesh through the CLI: `agentia up`, `status`, `invoke`, `publish`, `down`.

Runs last (see conftest's ordering hook): `down` stops the infrastructure too.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from agentia import names
from agentia.paths import agentia_home
from agentia_tools.runtime.supervisor import Supervisor

pytestmark = [pytest.mark.integration, pytest.mark.mesh_lifecycle]


def agentia(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentia_tools", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def mesh_ports() -> list[int]:
    ports = [names.PLACEMENT_PORT, names.SCHEDULER_PORT]
    for p in names.PORTS.values():
        ports += [p.app, p.dapr_http, p.dapr_grpc]
    return ports


def test_up_status_invoke_publish_down() -> None:
    up = agentia("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "http://127.0.0.1:8000" in up.stdout
    for app_id in names.APP_IDS:
        assert app_id in up.stdout

    status = agentia("status")
    assert status.returncode == 0, status.stdout
    assert "down" not in status.stdout

    info = agentia("invoke", names.MEMORY, "internal/info")
    assert info.returncode == 0, info.stdout + info.stderr
    assert '"app_id": "memory"' in info.stdout

    published = agentia("publish", "runs.events", '{"hello": "mesh"}', "--via", "agent-runner")
    assert published.returncode == 0, published.stderr
    # Topic scopes: the gateway publishes run requests, never run events.
    scoped = agentia("publish", "runs.events", '{"hello": "mesh"}')
    assert scoped.returncode == 1 and "publish refused (403)" in scoped.stderr, scoped.stderr

    bad_topic = agentia("publish", "no spaces allowed", "{}")
    assert bad_topic.returncode == 2
    assert "TOPIC" in bad_topic.stderr and "Traceback" not in bad_topic.stderr
    bad_json = agentia("publish", "runs.events", "{nope")
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
    bad_app = agentia("invoke", "nosuch", "internal/info")
    assert bad_app.returncode == 2 and "unknown app" in bad_app.stderr

    down = agentia("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not Supervisor(agentia_home()).running()
    still = [port for port in mesh_ports() if listening(port)]
    assert still == [], f"still listening after down: {still}"

    after = agentia("status")
    assert after.returncode == 1
