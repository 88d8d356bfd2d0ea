"""Long-lived agents (Dapr Workflows) on the public API: start, status, list, steps, raise
an event, pause, resume, terminate, purge. agent-runner hosts the workflows; the gateway
calls its internal routes through Dapr service invocation only, with agent-runner's typed
workflow client (``agentia.contracts.workflows``).
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agentia.contracts.workflows import (
    EVENT_NAME_PATTERN,
    INSTANCE_ID_PATTERN,
    StartWorkflow,
    WorkflowListQuery,
)
from agentia_gateway import upstream
from agentia_gateway.deps import Admission, Caller, Flow, Workflows
from agentia_gateway.errors import GatewayError
from agentia_gateway.runs_api import SSE_DOC, LastEventId, Streamed, parse_last_id, run_frames
from agentia_gateway.schemas import ERRORS

router = APIRouter(prefix="/workflows", tags=["Workflows"], responses=ERRORS)
InstanceId = Annotated[str, Path(pattern=INSTANCE_ID_PATTERN, description="Workflow instance id.")]
MessageId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="The message's id.")
]
StreamMode = Literal["messages", "messages-tuple", "events", "debug", "custom"]
MESSAGE_WAIT_S = 60.0  # how long a stream waits for a message's first event
EventName = Annotated[str, Path(pattern=EVENT_NAME_PATTERN, description="Event name.")]


class WorkflowStart(BaseModel):
    """A workflow to start: AgentLoop, RecurringAgent or FanOut, with its input."""

    model_config = ConfigDict(extra="forbid")
    workflow: str = Field(description="Registered workflow name, e.g. AgentLoop.")
    input: dict[str, Any] = Field(description="The workflow's input (see docs/workflows.md).")
    instance_id: str | None = Field(
        default=None, pattern=INSTANCE_ID_PATTERN, description="Instance id; new when absent."
    )


@router.post("", status_code=201)
async def start_workflow(
    body: WorkflowStart, workflows: Workflows, flow: Flow, caller: Caller, _: Admission
) -> Any:
    """Start a workflow; its model turns count against the calling key's budgets."""
    instance_id = body.instance_id or uuid.uuid4().hex
    budgets = flow.budgets
    previous = await budgets.own_workflow(caller.id, instance_id)
    try:
        start = upstream.request(
            StartWorkflow, workflow=body.workflow, input=body.input, instance_id=instance_id
        )
        return (await workflows.start(start)).model_dump(mode="json")
    except (HTTPException, GatewayError):
        await budgets.disown_workflow(instance_id, previous)
        raise


@router.get("")
async def list_workflows(
    workflows: Workflows,
    page_size: int = Query(default=100, ge=1, le=1000),
    continuation_token: Annotated[
        str | None, Query(pattern=r"^\d{1,18}$", description="From the previous page.")
    ] = None,
    details: bool = False,
) -> Any:
    query = WorkflowListQuery(
        page_size=page_size, continuation_token=continuation_token, details=details
    )
    return (await workflows.list_instances(query)).as_json()


@router.get("/{instance_id}")
async def get_workflow(instance_id: InstanceId, workflows: Workflows) -> Any:
    return (await workflows.status(instance_id)).model_dump(mode="json")


@router.get("/{instance_id}/steps")
async def workflow_steps(instance_id: InstanceId, workflows: Workflows) -> Any:
    return (await workflows.steps(instance_id)).model_dump(mode="json")


@router.post("/{instance_id}/events/{event_name}")
async def raise_workflow_event(
    instance_id: InstanceId, event_name: EventName, request: Request, workflows: Workflows
) -> Any:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except json.JSONDecodeError as exc:
        raise HTTPException(422, f"event body is not JSON: {exc.msg}") from None
    raised = await workflows.raise_event(instance_id, event_name, body)
    return raised.model_dump(mode="json")


@router.get("/{instance_id}/messages/{message_id}/stream", responses=SSE_DOC)
async def stream_message(
    instance_id: InstanceId,
    message_id: MessageId,
    request: Request,
    stream_mode: Annotated[
        list[StreamMode] | None, Query(description="Default: messages-tuple, events.")
    ] = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """A ChatAgent's answer to one message as it is produced (model deltas, tool calls,
    results), from any gateway replica; resumable with ``Last-Event-ID``. The message is sent
    with ``POST /workflows/{id}/events/message`` and ``{"text": ..., "id": message_id}``."""
    after = parse_last_id(last_event_id)
    run_id = f"{instance_id}.{message_id}"
    stream = Streamed(run_id, list(stream_mode or ["messages-tuple", "events"]))
    return StreamingResponse(
        run_frames(request, stream, after, after < 0, unrecorded_wait_s=MESSAGE_WAIT_S),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/{instance_id}/pause")
async def pause_workflow(instance_id: InstanceId, workflows: Workflows) -> Any:
    return (await workflows.pause(instance_id)).model_dump(mode="json")


@router.post("/{instance_id}/resume")
async def resume_workflow(instance_id: InstanceId, workflows: Workflows) -> Any:
    return (await workflows.resume(instance_id)).model_dump(mode="json")


@router.post("/{instance_id}/terminate")
async def terminate_workflow(instance_id: InstanceId, workflows: Workflows) -> Any:
    return (await workflows.terminate(instance_id)).model_dump(mode="json")


@router.delete("/{instance_id}")
async def purge_workflow(instance_id: InstanceId, workflows: Workflows) -> Any:
    return (await workflows.purge(instance_id)).model_dump(mode="json")
