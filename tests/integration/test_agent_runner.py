"""Agents run on the mesh with the offline model: pub/sub in, run events out, once in effect."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from agentia import names
from agentia.events import RunRequested
from agentia_tools.runtime.watchdog import stray_queues, subscriptions

from .conftest import Infra, ProbeApp, Sidecar, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def watcher(probe_apps: Callable[..., ProbeApp], mesh_service: Callable[[str], None]) -> ProbeApp:
    """A probe app subscribed to runs.events, with agent-runner up."""
    mesh_service(names.AGENT_RUNNER)
    return probe_apps("watch", topic=names.TOPIC_RUNS_EVENTS)


@pytest.fixture
def gateway(mesh_sidecar: Callable[[str], Sidecar]) -> Sidecar:
    """The gateway's sidecar: agent-runner's run methods answer only the gateway."""
    return mesh_sidecar(names.GATEWAY)


def request_run(app: ProbeApp, agent: str, text: Any, run_id: str | None = None) -> str:
    run_id = run_id or f"run-{uuid.uuid4().hex[:12]}"
    event = RunRequested(run_id=run_id, agent_id=agent, input=text)
    body = {
        "specversion": "1.0",
        "id": event.event_id,
        "source": app.app_id,
        "type": "RunRequested",
        "datacontenttype": "application/json",
        "data": event.model_dump(mode="json"),
    }
    resp = httpx.post(
        f"{app.dapr}/v1.0/publish/pubsub/{names.TOPIC_RUNS_REQUESTED}",
        content=json.dumps(body),
        headers={**app.headers(), "content-type": "application/cloudevents+json"},
        timeout=10,
    )
    assert resp.status_code == 204, resp.text
    return run_id


def events_of(app: ProbeApp, run_id: str) -> list[dict[str, Any]]:
    got = [e["data"] for e in app.received()["received"] if e["data"].get("run_id") == run_id]
    return sorted(got, key=lambda d: d["seq"])


def wait_final(app: ProbeApp, run_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    finals = {"run.completed", "run.failed", "run.cancelled"}
    wait_for(
        lambda: any(e["kind"] in finals for e in events_of(app, run_id)),
        timeout,
        f"end of {run_id}",
    )
    return events_of(app, run_id)


def ledger(app: Sidecar, run_id: str) -> dict[str, Any]:
    resp = httpx.get(
        f"{app.dapr}/v1.0/invoke/{names.AGENT_RUNNER}/method/internal/runs/{run_id}",
        headers=app.headers(),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_run_with_a_tool_call_streams_its_steps(watcher: ProbeApp, gateway: Sidecar) -> None:
    run_id = request_run(watcher, "assistant", 'use the calculator {"expression": "6 * 7"}')
    events = wait_final(watcher, run_id)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run.started" and kinds[-1] == "run.completed"
    call = next(e for e in events if e["kind"] == "tool.call")
    assert call["data"]["name"] == "calculator"
    assert next(e for e in events if e["kind"] == "tool.result")["data"]["output"] == "42"
    deltas = "".join(e["data"]["delta"] for e in events if e["kind"] == "message.delta")
    assert deltas == "[offline model] calculator returned: 42"
    assert events[-1]["data"]["output"] == deltas
    assert ledger(gateway, run_id)["status"] == "success"
    # Every event of the run is in the trace of the request that started it.
    envelopes = [e for e in watcher.received()["received"] if e["data"]["run_id"] == run_id]
    trace_ids = {e["traceparent"].split("-")[1] for e in envelopes}
    assert len(trace_ids) == 1, trace_ids


def test_a_queue_no_mesh_app_reads_is_found_stray(watcher: ProbeApp) -> None:
    """The probe's durable queue keeps a copy of every run event though no mesh app reads
    it: `stray_queues` names it (the probe fixture deletes it afterwards)."""
    run_id = request_run(watcher, "assistant", "hi")
    wait_final(watcher, run_id)
    stray = stray_queues(subscriptions())
    assert f"{watcher.app_id}-{names.TOPIC_RUNS_EVENTS}" in stray, stray
    assert not any(q.startswith(f"{names.GATEWAY}-") for q in stray), stray


def test_handoff_between_two_agents(watcher: ProbeApp) -> None:
    run_id = request_run(watcher, "triage", "I have a billing question about my invoice")
    events = wait_final(watcher, run_id)
    assert any(e["kind"] == "handoff" and e["data"]["to"] == "billing" for e in events)
    assert events[-1]["kind"] == "run.completed"
    assert events[-1]["data"]["last_agent"] == "billing"


def test_input_guardrail_trips_and_the_run_fails_with_a_reason(
    watcher: ProbeApp, gateway: Sidecar
) -> None:
    run_id = request_run(watcher, "triage", "here is my password: hunter2")
    events = wait_final(watcher, run_id)
    assert events[-1]["kind"] == "run.failed"
    assert "input guardrail tripped" in events[-1]["data"]["error"]
    assert ledger(gateway, run_id)["status"] == "error"


def test_structured_output(watcher: ProbeApp) -> None:
    run_id = request_run(watcher, "classifier", "the printer is on fire")
    events = wait_final(watcher, run_id)
    output = events[-1]["data"]["output"]
    assert events[-1]["kind"] == "run.completed"
    assert set(output) == {"category", "confidence"} and isinstance(output["confidence"], float)


def test_unknown_agent_fails_cleanly(watcher: ProbeApp) -> None:
    run_id = request_run(watcher, "nobody", "hi")
    events = wait_final(watcher, run_id)
    assert events[-1]["kind"] == "run.failed"
    assert "unknown agent 'nobody'" in events[-1]["data"]["error"]


def test_duplicate_delivery_of_a_run_is_processed_once(watcher: ProbeApp, gateway: Sidecar) -> None:
    run_id = request_run(watcher, "assistant", "hello")
    wait_final(watcher, run_id)
    request_run(watcher, "assistant", "hello", run_id=run_id)  # same run id, new event id
    request_run(watcher, "assistant", "hello", run_id=run_id)

    def finals() -> list[dict[str, Any]]:
        got = watcher.received()["received"]
        mine = [e for e in got if e["data"].get("run_id") == run_id]
        return [e for e in mine if e["data"]["kind"] == "run.completed"]

    # Each repeat finds the run finished and sends its final event again, under its one id
    # (it may not have gone out before a crash): consumers drop it as a repeat.
    wait_for(lambda: len(finals()) == 3, 30, "the final event re-sent for each repeat")
    assert {e["id"] for e in finals()} == {f"{run_id}.final"}
    kinds = [e["kind"] for e in events_of(watcher, run_id)]
    assert kinds.count("run.started") == 1
    assert ledger(gateway, run_id)["attempt"] == 1


def test_create_and_wait_through_service_invocation(watcher: ProbeApp, gateway: Sidecar) -> None:
    run_id = f"run-{uuid.uuid4().hex[:12]}"
    body = RunRequested(run_id=run_id, agent_id="assistant", input="what time is it? now")
    resp = httpx.post(
        f"{gateway.dapr}/v1.0/invoke/{names.AGENT_RUNNER}/method/internal/runs/wait",
        json=body.model_dump(mode="json"),
        headers=gateway.headers(),
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "success"
    assert resp.json()["output"].startswith("[offline model] now returned: ")


def test_runner_killed_mid_run_finishes_the_run_after_restart(
    watcher: ProbeApp, infra: Infra, gateway: Sidecar
) -> None:
    run_id = request_run(watcher, "assistant", 'please wait {"seconds": 5}')
    wait_for(
        lambda: any(e["kind"] == "tool.call" for e in events_of(watcher, run_id)),
        30,
        "the slow tool to start",
    )
    infra.supervisor.kill(names.AGENT_RUNNER, "KILL")  # supervisord restarts it
    events = wait_final(watcher, run_id, timeout=120)
    kinds = [e["kind"] for e in events]
    assert kinds.count("run.completed") == 1, kinds
    record = ledger(gateway, run_id)
    assert record["status"] == "success" and record["attempt"] == 2


def test_cancel_is_honoured_between_steps(watcher: ProbeApp, gateway: Sidecar) -> None:
    run_id = request_run(watcher, "assistant", 'please wait {"seconds": 3}')
    wait_for(
        lambda: any(e["kind"] == "tool.call" for e in events_of(watcher, run_id)),
        30,
        "the slow tool to start",
    )
    resp = httpx.post(
        f"{gateway.dapr}/v1.0/invoke/{names.AGENT_RUNNER}/method/internal/runs/{run_id}/cancel",
        headers=gateway.headers(),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    events = wait_final(watcher, run_id)
    assert events[-1]["kind"] == "run.cancelled"
    assert not any(e["kind"] == "message.delta" for e in events)  # stopped before answering
    assert ledger(gateway, run_id)["status"] == "interrupted"
