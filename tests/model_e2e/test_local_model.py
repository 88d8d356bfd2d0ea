"""A real OpenAI-compatible server in the loop: llama-server with SmolLM2-135M behind agent-runner's
``compatible:`` provider, everything asked through the gateway's public API.

What is checked is the protocol, not the model's wisdom (a 135M model answers poorly): deltas
stream, a forced tool call reaches the tool, a workflow's model turn runs, usage is counted
once and priced, a cost budget refuses, and killing the model server mid-run ends the run
(retried, or failed with the reason) with its usage counted once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from agentia import names
from agentia_tools.runtime import model_server
from agentia_tools.runtime.supervisor import Supervisor
from agentia_workflows.contracts import AGENT_LOOP
from tests.sse import sse

from .conftest import MODEL, wait_for

pytestmark = pytest.mark.integration
FINAL = ("run.completed", "run.failed", "run.cancelled")


def stream(
    client: httpx.Client,
    body: dict[str, Any],
    on_delta: Callable[[str], None] | None = None,
    timeout: float = 240,
) -> tuple[str, list[dict[str, Any]], list[str], float | None]:
    """A stateless streamed run: its id, its run events, its message deltas and the seconds
    to the first delta. Ends at the run's final event."""
    events: list[dict[str, Any]] = []
    deltas: list[str] = []
    first: float | None = None
    started = time.monotonic()
    body = {**body, "stream_mode": ["messages-tuple", "events"]}
    with client.stream("POST", "/runs/stream", json=body, timeout=timeout) as resp:
        assert resp.status_code == 200, resp.read().decode()
        run_id = resp.headers["content-location"].rsplit("/", 1)[-1]
        for frame in sse(resp.iter_lines()):
            if frame.get("event") == "messages":
                text = frame["data"][0]["content"]
                if text:
                    first = first if first is not None else time.monotonic() - started
                    deltas.append(text)
                    if on_delta is not None:
                        on_delta(text)
            elif frame.get("event") == "events":
                events.append(frame["data"])
                if frame["data"]["kind"] in FINAL:
                    break
    return run_id, events, deltas, first


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events]


def usage_today(client: httpx.Client) -> dict[str, Any]:
    return dict(client.get("/usage").json())


def counted_runs(client: httpx.Client) -> int:
    days = usage_today(client)["days"]
    return int(days[0]["runs"]) if days else 0


def test_a_streamed_run_sends_deltas_as_the_model_writes(
    new_key: Callable[..., httpx.Client],
) -> None:
    client = new_key()
    body = {"assistant_id": "local", "input": "Describe the sea in three sentences."}
    run_id, events, deltas, first = stream(client, body)
    assert kinds(events)[-1] == "run.completed", events[-1]
    assert len(deltas) >= 3, f"the answer came in {len(deltas)} pieces: {deltas}"
    (completed,) = [e for e in events if e["kind"] == "message.completed"]
    assert "".join(deltas) == completed["data"]["text"] and completed["data"]["text"].strip()
    assert client.get(f"/runs/{run_id}").json()["status"] == "success"
    usage = events[-1]["data"]["usage"]  # what the model server reported, on the final event
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0 and usage["requests"] == 1
    print(f"\nstreamed run: first delta after {first:.2f}s, {len(deltas)} deltas, usage {usage}")


def test_a_forced_tool_call_reaches_the_tool(new_key: Callable[..., httpx.Client]) -> None:
    client = new_key()
    body = {"assistant_id": "local-calculator", "input": "What is 12 times 7?"}
    _, events, _, _ = stream(client, body)
    calls = [e["data"] for e in events if e["kind"] == "tool.call"]
    results = [e["data"] for e in events if e["kind"] == "tool.result"]
    assert calls, f"no tool call in {kinds(events)}"
    assert calls[0]["name"] == "calculator"
    # llama-server constrains a forced call to the tool's schema: the arguments are JSON.
    assert isinstance(json.loads(calls[0]["arguments"]), dict), calls[0]
    assert results and results[0]["call_id"] == calls[0]["call_id"], results
    assert kinds(events)[-1] == "run.completed", events[-1]
    # One model turn: the agent ends its run with the first tool's output (stop_on_first_tool).
    assert events[-1]["data"]["usage"]["requests"] == 1, events[-1]
    print(f"\nforced call: {calls[0]['arguments']} -> {results[0]['output']!r}")


def test_a_workflow_step_runs_on_the_model(new_key: Callable[..., httpx.Client]) -> None:
    client = new_key()
    body = {"workflow": AGENT_LOOP, "input": {"agent_id": "local", "messages": ["Say hello."]}}
    resp = client.post("/workflows", json=body)
    assert resp.status_code == 201, resp.text
    instance = resp.json()["instance_id"]

    def done() -> dict[str, Any] | None:
        status = client.get(f"/workflows/{instance}").json()
        if status.get("status") in ("FAILED", "TERMINATED"):
            pytest.fail(f"workflow ended {status['status']}: {status}")
        return status if status.get("status") == "COMPLETED" else None

    status = wait_for(done, 180, "the workflow completed")
    outputs = status["output"]["outputs"]
    assert len(outputs) == 1 and outputs[0].strip() and "[offline model]" not in outputs[0]
    steps = client.get(f"/workflows/{instance}/steps").json()["steps"]
    assert any(s["kind"] == "model" for s in steps), steps
    # The workflow's model turn is counted for the key that started it, under the model.
    rows = wait_for(lambda: usage_today(client)["days"][0]["models"], 60, "the turn's usage")
    assert [r["model"] for r in rows] == [MODEL] and rows[0]["output_tokens"] > 0


def test_usage_is_counted_once_priced_and_the_cost_budget_refuses(
    new_key: Callable[..., httpx.Client],
) -> None:
    # 1000 µUSD a day: the suite prices the model at 100 µUSD per input token, so one run
    # uses it up.
    client = new_key(cost_budget_micro_usd_per_day=1000)
    _, events, _, _ = stream(client, {"assistant_id": "local", "input": "Hello!"})
    assert events[-1]["kind"] == "run.completed", events[-1]
    reported = events[-1]["data"]["usage"]
    wait_for(lambda: counted_runs(client) == 1, 60, "the run's usage counted")
    today = usage_today(client)
    (row,) = today["days"][0]["models"]
    assert row["model"] == MODEL and row["priced"] and row["runs"] == 1, row
    assert row["input_tokens"] == reported["input_tokens"] > 0
    assert row["output_tokens"] == reported["output_tokens"] > 0
    assert row["cost_micro_usd"] == 100 * row["input_tokens"] + 200 * row["output_tokens"]
    assert today["cost_used_today_micro_usd"] == row["cost_micro_usd"]

    refused = client.post("/runs/wait", json={"assistant_id": "local", "input": "Again?"})
    assert refused.status_code == 429, refused.text
    assert "cost budget of 0.001000 USD per day used up" in refused.json()["detail"]
    assert counted_runs(client) == 1


def test_the_model_server_killed_mid_run(
    new_key: Callable[..., httpx.Client], local_mesh: Supervisor
) -> None:
    """kill -9 of llama-server while it writes: supervisord restarts it; the run is retried
    (a dependency down is unavailability, not a failure) or fails with the reason; either
    way it ends, and its usage is counted once."""
    client = new_key()
    before = {p.name: p.pid for p in local_mesh.processes()}[names.MODEL_SERVER]
    killed: list[float] = []

    def kill_once(_: str) -> None:
        if not killed:
            local_mesh.kill(names.MODEL_SERVER)
            killed.append(time.monotonic())

    body = {"assistant_id": "local", "input": "Count from 1 to 100, separated by commas."}
    run_id, events, _, _ = stream(client, body, on_delta=kill_once, timeout=300)
    assert killed, "the run never streamed a delta"
    ended = time.monotonic() - killed[0]
    final = events[-1]
    assert final["kind"] in ("run.completed", "run.failed"), final
    record = wait_for(
        lambda: (r := client.get(f"/runs/{run_id}").json())["status"] != "running" and r,
        60,
        "the run's record final",
    )
    if final["kind"] == "run.failed":
        assert record["error"], record  # a failure says why
    else:
        assert record["status"] == "success"
    print(f"\nkilled mid-run: ended {final['kind']} {ended:.1f}s after the kill")

    after = wait_for(
        lambda: (
            (p := {p.name: p for p in local_mesh.processes()}[names.MODEL_SERVER]).state
            == "RUNNING"
            and model_server.probe().ok
            and p.pid
        ),
        60,
        "llama-server restarted",
    )
    assert after != before
    usage = final["data"].get("usage") or {}
    if usage:
        wait_for(lambda: counted_runs(client) == 1, 60, "the run's usage counted")
    today = usage_today(client)
    used = today["tokens_used_today"]
    assert used == usage.get("input_tokens", 0) + usage.get("output_tokens", 0), (today, record)
    # And the next run on the restarted server simply works.
    again = client.post("/runs/wait", json={"assistant_id": "local", "input": "Hi."})
    assert again.status_code == 200 and again.json()["run"]["status"] == "success", again.text
