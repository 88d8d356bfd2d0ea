"""Long-lived agents as Dapr Workflows, through the real mesh (agent-runner's worker,
its sidecar, placement, scheduler and the PostgreSQL actor state store)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from agentia import names
from agentia_workflows.contracts import AGENT_LOOP, APPROVAL_EVENT, FAN_OUT, RECURRING_AGENT

from .conftest import Infra, Sidecar, wait_for

pytestmark = pytest.mark.integration
CALC = 'calculator {"expression": "%s"}'


@pytest.fixture
def ops(mesh_sidecar: Callable[[str], Sidecar], mesh_service: Callable[[str], None]) -> Sidecar:
    """The gateway's sidecar, which may invoke agent-runner's workflow routes."""
    mesh_service(names.AGENT_RUNNER)
    return mesh_sidecar(names.GATEWAY)


def call(app: Sidecar, verb: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        verb,
        f"{app.dapr}/v1.0/invoke/{names.AGENT_RUNNER}/method/internal/workflows{path}",
        json=body,
        headers=app.headers(),
        timeout=30,
    )


def start(app: Sidecar, workflow: str, inp: dict[str, Any]) -> str:
    instance = f"t-{uuid.uuid4().hex[:10]}"
    resp = call(app, "POST", "", {"workflow": workflow, "input": inp, "instance_id": instance})
    assert resp.status_code == 201, resp.text
    return instance


def status(app: Sidecar, instance: str) -> dict[str, Any]:
    resp = call(app, "GET", f"/{instance}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def status_now(app: Sidecar, instance: str) -> dict[str, Any]:
    """The status, or {} while agent-runner is not answering (e.g. restarting after a kill)."""
    resp = call(app, "GET", f"/{instance}")
    return dict(resp.json()) if resp.status_code == 200 else {}


def wait_status(app: Sidecar, instance: str, want: str, timeout: float = 60) -> dict[str, Any]:
    wait_for(lambda: status_now(app, instance).get("status") == want, timeout, f"{instance} {want}")
    return status(app, instance)


def wait_phase(app: Sidecar, instance: str, phase: str, timeout: float = 60) -> None:
    def at_phase() -> bool:
        custom = status_now(app, instance).get("custom_status")
        return isinstance(custom, dict) and custom.get("phase") == phase

    wait_for(at_phase, timeout, f"{instance} at {phase}")


def tool_steps(app: Sidecar, instance: str) -> list[dict[str, Any]]:
    resp = call(app, "GET", f"/{instance}/steps")
    assert resp.status_code == 200, resp.text
    return [s for s in resp.json()["steps"] if s["kind"] == "tool"]


def test_two_tool_steps_complete(ops: Sidecar) -> None:
    inp = {"agent_id": "assistant", "messages": [CALC % "2+3", CALC % "4*5"]}
    instance = start(ops, AGENT_LOOP, inp)
    out = wait_status(ops, instance, "COMPLETED")["output"]
    assert out["outputs"] == [
        "[offline model] calculator returned: 5",
        "[offline model] calculator returned: 20",
    ]
    assert [s["kind"] for s in out["steps"]] == ["model", "tool", "model"] * 2
    steps = tool_steps(ops, instance)
    assert [(s["output"], s["executions"], s["done"]) for s in steps] == [
        ("5", 1, True),
        ("20", 1, True),
    ]


def test_worker_killed_between_steps_finishes_with_each_effect_once(
    ops: Sidecar, infra: Infra
) -> None:
    inp = {
        "agent_id": "assistant",
        "messages": [CALC % "1+1", CALC % "3*3"],
        "pause_between_s": 4,
    }
    instance = start(ops, AGENT_LOOP, inp)
    wait_phase(ops, instance, "sleeping")  # step 1 done, durable timer pending
    infra.supervisor.kill(names.AGENT_RUNNER, "KILL")  # supervisord restarts it
    out = wait_status(ops, instance, "COMPLETED", timeout=90)["output"]
    assert out["outputs"][-1] == "[offline model] calculator returned: 9"
    steps = tool_steps(ops, instance)
    assert [(s["output"], s["executions"]) for s in steps] == [("2", 1), ("9", 1)]


def test_approval_arrives_and_the_tool_runs(ops: Sidecar) -> None:
    inp = {
        "agent_id": "assistant",
        "messages": [CALC % "6*7"],
        "approval_required": ["calculator"],
        "approval_timeout_s": 120,
    }
    instance = start(ops, AGENT_LOOP, inp)
    wait_phase(ops, instance, "awaiting_approval")
    assert tool_steps(ops, instance) == []
    decision = {"approved": True, "by": "reviewer", "note": "fine"}
    resp = call(ops, "POST", f"/{instance}/events/{APPROVAL_EVENT}", decision)
    assert resp.status_code == 200, resp.text
    out = wait_status(ops, instance, "COMPLETED")["output"]
    assert out["outputs"] == ["[offline model] calculator returned: 42"]
    assert out["steps"][1] == {
        "schema_version": 1,
        "step": 2,
        "kind": "approval",
        "name": "calculator",
        "detail": "approved by reviewer: fine",
    }


def test_approval_timeout_takes_the_default(ops: Sidecar) -> None:
    inp = {
        "agent_id": "assistant",
        "messages": [CALC % "6*7"],
        "approval_required": ["calculator"],
        "approval_timeout_s": 1,
        "default_decision": "reject",
    }
    instance = start(ops, AGENT_LOOP, inp)
    out = wait_status(ops, instance, "COMPLETED")["output"]
    assert out["steps"][1]["detail"].startswith("rejected by timeout")
    assert "was rejected" in out["outputs"][0]
    assert tool_steps(ops, instance) == []  # the tool never ran


def test_timer_wakes_the_agent_and_continue_as_new_bounds_history(ops: Sidecar) -> None:
    inp = {"agent_id": "assistant", "message": "status report", "every_s": 1, "runs": 3}
    instance = start(ops, RECURRING_AGENT, inp)
    done = wait_status(ops, instance, "COMPLETED")
    assert done["output"] == {
        "schema_version": 1,
        "runs_done": 3,
        "last_output": "[offline model] You said: status report",
    }
    # Each generation started over with only the carried-over input.
    assert done["input"]["done"] == 2
    for run in (1, 2, 3):
        assert status(ops, f"{instance}-run-{run}")["status"] == "COMPLETED"


def test_fan_out_fan_in_over_child_workflows(ops: Sidecar) -> None:
    instance = start(ops, FAN_OUT, {"agents": ["assistant", "support"], "message": "hi"})
    out = wait_status(ops, instance, "COMPLETED")["output"]
    assert [a["agent_id"] for a in out["answers"]] == ["assistant", "support"]
    assert all(a["output"] == "[offline model] You said: hi" for a in out["answers"])


def test_operations_pause_resume_terminate_list_purge(ops: Sidecar) -> None:
    inp = {"agent_id": "assistant", "messages": ["a", "b"], "pause_between_s": 600}
    instance = start(ops, AGENT_LOOP, inp)
    wait_phase(ops, instance, "sleeping")
    assert call(ops, "POST", f"/{instance}/pause").status_code == 200
    wait_status(ops, instance, "SUSPENDED")
    assert call(ops, "POST", f"/{instance}/resume").status_code == 200
    wait_status(ops, instance, "RUNNING")
    listing = call(ops, "GET", "?page_size=1000").json()
    assert instance in listing["instance_ids"]
    busy = call(ops, "DELETE", f"/{instance}")
    assert busy.status_code == 409 and "terminate it first" in busy.text
    assert call(ops, "POST", f"/{instance}/terminate").status_code == 200
    wait_status(ops, instance, "TERMINATED")
    assert call(ops, "DELETE", f"/{instance}").status_code == 200
    gone = call(ops, "GET", f"/{instance}")
    assert gone.status_code == 404 and "no workflow instance" in gone.text


def test_bad_starts_get_clear_errors(ops: Sidecar) -> None:
    unknown = call(ops, "POST", "", {"workflow": "Nope", "input": {}})
    assert unknown.status_code == 422 and "unknown workflow 'Nope'" in unknown.text
    bad = call(ops, "POST", "", {"workflow": AGENT_LOOP, "input": {"agent_id": "assistant"}})
    assert bad.status_code == 422 and "input.messages" in bad.text
    agent = call(
        ops, "POST", "", {"workflow": AGENT_LOOP, "input": {"agent_id": "x", "messages": ["a"]}}
    )
    assert agent.status_code == 422 and "unknown agent 'x'" in agent.text
