"""agent-runner's workflow contract (``agentia.contracts.workflows``): the typed client builds
each call and reads each answer, an answer read and written back is what was sent (so the
gateway's ``/workflows`` JSON is agent-runner's), and the routes serve the contract's models."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from agentia import names
from agentia.contracts import InvokeError
from agentia.contracts import workflows as api
from agentia.contracts.workflows import (
    ControlAccepted,
    EventRaised,
    StartWorkflow,
    WorkflowInstance,
    WorkflowList,
    WorkflowListQuery,
    WorkflowPurged,
    WorkflowsClient,
    WorkflowStarted,
    WorkflowSteps,
)
from agentia_runner import workflow_ops
from tests.unit.fake_call import FakeCall

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def instance(**extra: Any) -> dict[str, Any]:
    """An instance as agent-runner answers it (times as ``datetime.isoformat`` writes them)."""
    return {
        "instance_id": "wf:1",
        "workflow": "AgentLoop",
        "status": "RUNNING",
        "created_at": "2026-03-28T23:58:30.250000+00:00",
        "last_updated_at": "2026-03-28T23:58:31",
        "input": {"agent_id": "assistant", "messages": ["hi"]},
        "output": None,
        "custom_status": {"phase": "model", "step": 2},
        "failure": None,
        **extra,
    }


def test_start_and_check_post_the_request() -> None:
    call = FakeCall({"instance_id": "wf:1", "workflow": "AgentLoop"}, None)
    client = WorkflowsClient(call)
    req = StartWorkflow(workflow="AgentLoop", input={"agent_id": "a", "x": None})
    started = run(client.start(req.model_copy(update={"instance_id": "wf:1"})))
    assert run(client.check(req)) is None
    assert call.asked() == [
        (
            names.AGENT_RUNNER,
            "POST",
            "internal/workflows",
            {"workflow": "AgentLoop", "input": {"agent_id": "a", "x": None}, "instance_id": "wf:1"},
        ),
        # No instance id: none sent (agent-runner makes one); the input is sent as given.
        (
            names.AGENT_RUNNER,
            "POST",
            "internal/workflows/check",
            {"workflow": "AgentLoop", "input": {"agent_id": "a", "x": None}},
        ),
    ]
    assert [c.timeout for c in call.calls] == [None, None]
    assert started == WorkflowStarted(instance_id="wf:1", workflow="AgentLoop")


def test_each_instance_call_builds_its_method_and_path() -> None:
    steps = {
        "instance_id": "wf:1",
        "steps": [
            {"step": 1, "kind": "model", "name": "assistant", "done": True, "executions": 1},
            {"step": 2, "kind": "tool", "name": "calculator", "output": "42", "executions": 2},
        ],
    }
    call = FakeCall(
        instance(),
        steps,
        {"instance_id": "wf:1", "event": "message", "status": "raised"},
        {"instance_id": "wf:1", "event": "approve", "status": "raised"},
        *(
            {"instance_id": "wf:1", "action": a, "status": "accepted"}
            for a in ("pause", "resume", "terminate")
        ),
        {"instance_id": "wf:1", "status": "purged"},
    )
    client = WorkflowsClient(call, app_id="runner-b", timeout=3.0)
    status = run(client.status("wf:1"))
    ledger = run(client.steps("wf:1"))
    raised = run(client.raise_event("wf:1", "message", {"text": "hi", "id": "m1"}))
    run(client.raise_event("wf:1", "approve"))
    controls = [
        run(client.pause("wf:1")),
        run(client.resume("wf:1")),
        run(client.terminate("wf:1")),
    ]
    purged = run(client.purge("wf:1"))
    assert [(c[1], c[2], c[3]) for c in call.calls] == [
        ("GET", "internal/workflows/wf:1", None),
        ("GET", "internal/workflows/wf:1/steps", None),
        ("POST", "internal/workflows/wf:1/events/message", {"text": "hi", "id": "m1"}),
        ("POST", "internal/workflows/wf:1/events/approve", None),  # no body: no data
        ("POST", "internal/workflows/wf:1/pause", None),
        ("POST", "internal/workflows/wf:1/resume", None),
        ("POST", "internal/workflows/wf:1/terminate", None),
        ("DELETE", "internal/workflows/wf:1", None),
    ]
    assert {c[0] for c in call.calls} == {"runner-b"} and {c.timeout for c in call.calls} == {3.0}
    assert status.status == "RUNNING" and not status.terminal
    assert status.created_at == datetime(2026, 3, 28, 23, 58, 30, 250_000, tzinfo=UTC)
    assert ledger.model_dump(mode="json") == steps  # what each step recorded rides along
    assert raised == EventRaised(instance_id="wf:1", event="message")
    assert [c.action for c in controls] == ["pause", "resume", "terminate"]
    assert all(isinstance(c, ControlAccepted) for c in controls)
    assert purged == WorkflowPurged(instance_id="wf:1")


def test_listing_asks_for_a_page_and_keeps_instances_only_when_asked() -> None:
    page = {"instance_ids": ["a", "b"], "continuation_token": "2"}
    detailed = {"instance_ids": ["a"], "continuation_token": None, "instances": [instance()]}
    call = FakeCall(page, detailed, page)
    client = WorkflowsClient(call)
    first = run(client.list_instances(WorkflowListQuery(page_size=2)))
    second = run(client.list_instances(WorkflowListQuery(continuation_token="2", details=True)))
    run(client.list_instances())
    assert [c[2] for c in call.calls] == [
        "internal/workflows?page_size=2&details=false",
        "internal/workflows?page_size=100&continuation_token=2&details=true",
        "internal/workflows",
    ]
    assert first.as_json() == page and "instances" not in first.as_json()
    assert second.as_json() == detailed
    with pytest.raises(ValidationError):
        WorkflowListQuery(continuation_token="next")


def test_an_instance_is_written_back_as_agent_runner_wrote_it() -> None:
    failed = instance(
        status="FAILED",
        created_at=None,
        output="not json",
        failure={"type": "RuntimeError", "message": "boom"},
    )
    for answer in (instance(), failed):
        read = WorkflowInstance.model_validate(answer)
        assert read.model_dump(mode="json") == answer
    assert WorkflowInstance.model_validate(failed).terminal


def test_paths_keep_colons_and_quote_the_rest() -> None:
    assert api.instance_path("chat:7.m-1") == "internal/workflows/chat:7.m-1"
    assert api.event_path("a b", "x/y") == "internal/workflows/a%20b/events/x%2Fy"
    assert api.control_path("i", "terminate") == "internal/workflows/i/terminate"


def test_a_refusal_reaches_the_caller_as_its_call_raised_it() -> None:
    refused = InvokeError(names.AGENT_RUNNER, 404, "no workflow instance 'x'")
    with pytest.raises(InvokeError) as caught:
        run(WorkflowsClient(FakeCall(refused)).status("x"))
    assert caught.value is refused


def test_every_field_is_described_and_requests_refuse_unknown_fields() -> None:
    models: list[type[BaseModel]] = [
        api.StartWorkflow,
        api.WorkflowStarted,
        api.WorkflowFailure,
        api.WorkflowInstance,
        api.WorkflowListQuery,
        api.WorkflowList,
        api.WorkflowStep,
        api.WorkflowSteps,
        api.EventRaised,
        api.ControlAccepted,
        api.WorkflowPurged,
    ]
    for model in models:
        assert model.__doc__, model
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"
    assert StartWorkflow.model_config.get("extra") == "forbid"
    with pytest.raises(ValidationError, match="instance_id"):
        StartWorkflow(workflow="AgentLoop", input={}, instance_id="-bad")


def test_the_routes_take_and_answer_the_contracts_models() -> None:
    base = f"/{api.WORKFLOWS}"
    expected = {
        ("POST", base): (StartWorkflow, WorkflowStarted),
        ("POST", f"/{api.CHECK}"): (StartWorkflow, None),
        ("GET", base): (None, WorkflowList),
        ("GET", f"{base}/{{instance_id}}"): (None, WorkflowInstance),
        ("GET", f"{base}/{{instance_id}}/steps"): (None, WorkflowSteps),
        ("POST", f"{base}/{{instance_id}}/events/{{event_name}}"): (None, EventRaised),
        ("POST", f"{base}/{{instance_id}}/pause"): (None, ControlAccepted),
        ("POST", f"{base}/{{instance_id}}/resume"): (None, ControlAccepted),
        ("POST", f"{base}/{{instance_id}}/terminate"): (None, ControlAccepted),
        ("DELETE", f"{base}/{{instance_id}}"): (None, WorkflowPurged),
    }
    served: dict[tuple[str, str], APIRoute] = {}
    for route in workflow_ops.router.routes:
        assert isinstance(route, APIRoute)
        served.update({(method, route.path): route for method in route.methods or ()})
    assert set(served) == set(expected)
    for key, (body, answer) in expected.items():
        route = served[key]
        bodies = [p.field_info.annotation for p in route.dependant.body_params]
        assert bodies == ([body] if body else []), key
        for model in bodies:
            assert model.__module__ == "agentia.contracts.workflows", key
        assert route.response_model == answer, key
    listing = served[("GET", base)].dependant.query_params
    assert [p.field_info.annotation for p in listing] == [WorkflowListQuery]
