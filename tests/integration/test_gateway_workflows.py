"""Long-lived agents on the public API: the gateway's /workflows routes and `agentia workflows`,
through the real mesh (gateway -> Dapr invocation -> agent-runner's workflow worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from agentia import names
from agentia_tools.runtime import local_keys
from agentia_workflows.contracts import AGENT_LOOP, APPROVAL_EVENT, CHAT_AGENT, MESSAGE_EVENT
from tests.sse import sse

from .conftest import Infra, wait_for

pytestmark = pytest.mark.integration
GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
CALC = 'calculator {"expression": "%s"}'


@pytest.fixture(scope="module")
def api(infra: Infra, mesh_service: Callable[[str], None]) -> Iterator[httpx.Client]:
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.GATEWAY):
        mesh_service(app_id)
    key = local_keys.read_local_key(infra.home)
    assert key
    with httpx.Client(base_url=GATEWAY, headers={"x-api-key": key}, timeout=60) as client:
        wait_for(lambda: client.get("/workflows?page_size=1").status_code == 200, 60, "gateway")
        yield client


def cli(infra: Infra, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTIA_HOME": str(infra.home)}
    return subprocess.run(
        [sys.executable, "-m", "agentia_tools", "workflows", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def status(api: httpx.Client, instance: str) -> dict[str, Any]:
    resp = api.get(f"/workflows/{instance}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_start_wait_and_steps_through_the_gateway(api: httpx.Client) -> None:
    instance = f"gw-{uuid.uuid4().hex[:8]}"
    body = {
        "workflow": AGENT_LOOP,
        "input": {"agent_id": "assistant", "messages": [CALC % "2+2", CALC % "3*3"]},
        "instance_id": instance,
    }
    resp = api.post("/workflows", json=body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["instance_id"] == instance
    wait_for(
        lambda: api.get(f"/workflows/{instance}").json().get("status") == "COMPLETED",
        60,
        "completed",
    )
    assert (
        status(api, instance)["output"]["outputs"][-1] == "[offline model] calculator returned: 9"
    )
    tools = [
        s for s in api.get(f"/workflows/{instance}/steps").json()["steps"] if s["kind"] == "tool"
    ]
    assert [(s["output"], s["executions"]) for s in tools] == [("4", 1), ("9", 1)]
    listed = api.get("/workflows?page_size=1000").json()["instance_ids"]
    assert instance in listed
    assert api.delete(f"/workflows/{instance}").status_code == 200
    assert api.get(f"/workflows/{instance}").status_code == 404
    assert api.get(f"/workflows/{instance}/steps").status_code == 404  # purged: no steps


def test_bad_requests_get_clear_errors(api: httpx.Client) -> None:
    assert httpx.get(f"{GATEWAY}/workflows").status_code == 401
    resp = api.post("/workflows", json={"workflow": "Nope", "input": {}})
    assert resp.status_code == 422 and "unknown workflow 'Nope'" in resp.text
    resp = api.post("/workflows", json={"workflow": AGENT_LOOP, "input": {"messages": []}})
    assert resp.status_code == 422 and "input.agent_id" in resp.text, resp.text
    resp = api.post("/workflows", json={"workflow": AGENT_LOOP})
    assert resp.status_code == 422 and "input" in resp.text
    assert api.get("/workflows/no-such-instance").status_code == 404
    resp = api.post("/workflows/no-such-instance/events/approval", content=b"{not json")
    assert resp.status_code == 422 and "not JSON" in resp.text


def test_cli_approves_a_waiting_step(api: httpx.Client, infra: Infra) -> None:
    inp = {
        "agent_id": "assistant",
        "messages": [CALC % "6*7"],
        "approval_required": ["calculator"],
        "approval_timeout_s": 120,
    }
    started = cli(infra, "start", AGENT_LOOP, "--input", json.dumps(inp))
    assert started.returncode == 0, started.stderr
    instance = started.stdout.strip()

    def awaiting() -> bool:
        custom = api.get(f"/workflows/{instance}").json().get("custom_status")
        return isinstance(custom, dict) and custom.get("phase") == "awaiting_approval"

    wait_for(awaiting, 60, "awaiting approval")
    raised = cli(
        infra, "raise", instance, APPROVAL_EVENT, "--data", '{"approved": true, "by": "cli"}'
    )
    assert raised.returncode == 0, raised.stderr
    done = cli(infra, "status", instance, "--wait", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"]["outputs"] == [
        "[offline model] calculator returned: 42"
    ]
    assert "COMPLETED" in done.stderr  # progress lines go to stderr


def test_cli_names_bad_input(infra: Infra, api: httpx.Client) -> None:
    bad = cli(infra, "start", AGENT_LOOP, "--input", "{oops")
    assert bad.returncode == 2 and "--input" in bad.stderr and "not JSON" in bad.stderr
    refused = cli(infra, "start", AGENT_LOOP, "--input", '{"messages": []}')
    assert refused.returncode == 1 and "input.agent_id" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_chat_message_streams_as_it_is_produced_and_resumes(api: httpx.Client) -> None:
    instance = f"chat-{uuid.uuid4().hex[:8]}"
    body = {"workflow": CHAT_AGENT, "input": {"agent_id": "assistant"}, "instance_id": instance}
    assert api.post("/workflows", json=body).status_code == 201
    url = f"/workflows/{instance}/messages/q1/stream?stream_mode=messages-tuple&stream_mode=events"
    first: list[dict[str, Any]] = []
    with api.stream("GET", url) as resp:  # opened before the message exists: it waits
        assert resp.status_code == 200
        raised = api.post(
            f"/workflows/{instance}/events/{MESSAGE_EVENT}",
            json={"text": CALC % "6*7", "id": "q1"},
        )
        assert raised.status_code == 200, raised.text
        for event in sse(resp.iter_lines()):
            first.append(event)
            if event["event"] == "messages":
                break  # drop the connection after the first model delta
    last_id = first[-1]["id"]
    with api.stream("GET", url, headers={"Last-Event-ID": last_id}) as resp:
        rest = list(sse(resp.iter_lines()))
    assert rest and min(int(e["id"]) for e in rest) > int(last_id), "only what was missed"
    frames = first + rest
    text = "".join(e["data"][0]["content"] for e in frames if e["event"] == "messages")
    assert text == "[offline model] calculator returned: 42"
    kinds = [e["data"]["kind"] for e in frames if e["event"] == "events"]
    assert kinds[0] == "run.started" and kinds[-1] == "run.completed"
    assert kinds.count("tool.call") == kinds.count("tool.result") == 1
    seqs = [e["data"]["seq"] for e in frames if e["event"] == "events"]
    assert seqs == list(range(len(seqs))), "every event once, in order"
    api.post(f"/workflows/{instance}/events/{MESSAGE_EVENT}", json={"end": True})
