"""Operations on workflow instances: start, status, list, raise event, pause, resume,
terminate, purge, and the step ledger of an instance.

Internal routes (the gateway, the scheduler and the CLI reach them through Dapr service
invocation; their paths and models are ``agentia.contracts.workflows``); the calls go to this
service's sidecar over gRPC with the SDK's workflow client.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

import pydantic
from dapr.ext.workflow.aio import DaprWorkflowClient
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from grpc import StatusCode
from grpc.aio import AioRpcError
from pydantic import BaseModel

from agentia import names
from agentia.contracts import workflows as api
from agentia.contracts.workflows import (
    EVENT_NAME_PATTERN,
    INSTANCE_ID_PATTERN,
    Control,
    ControlAccepted,
    EventRaised,
    StartWorkflow,
    WorkflowFailure,
    WorkflowInstance,
    WorkflowList,
    WorkflowListQuery,
    WorkflowPurged,
    WorkflowStarted,
    WorkflowStep,
    WorkflowSteps,
)
from agentia.service import dapr_client
from agentia_workflows.activities import step_key
from agentia_workflows.contracts import (
    AGENT_LOOP,
    CHAT_AGENT,
    FAN_OUT,
    RECURRING_AGENT,
    WORKFLOW_INPUTS,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix=f"/{api.WORKFLOWS}")
LEDGER_BATCH = 50
InstanceId = Annotated[str, Path(pattern=INSTANCE_ID_PATTERN)]
EventName = Annotated[str, Path(pattern=EVENT_NAME_PATTERN)]


def _client(request: Request) -> DaprWorkflowClient:
    client: DaprWorkflowClient = request.app.state.workflow_client
    return client


def _agents_in(workflow: str, value: BaseModel) -> list[str]:
    if workflow == FAN_OUT:
        return list(value.agents)  # type: ignore[attr-defined]
    if workflow in (AGENT_LOOP, RECURRING_AGENT, CHAT_AGENT):
        return [value.agent_id]  # type: ignore[attr-defined]
    return []


def _payload(raw: str | None) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


async def _read_state(client: DaprWorkflowClient, instance_id: str) -> Any:
    """The instance's state. The sidecar reads it while the engine may be writing it and then
    answers UNKNOWN ("... missing from state store (transient ...)"): read again briefly, and
    if it persists answer 503 (retry) rather than a 500."""
    for attempt in range(4):
        try:
            return await client.get_workflow_state(instance_id, fetch_payloads=True)
        except AioRpcError as exc:
            if exc.code() not in (StatusCode.UNKNOWN, StatusCode.UNAVAILABLE):
                raise
            why = exc.details() or exc.code().name
            await asyncio.sleep(0.1 * (attempt + 1))
    raise HTTPException(503, f"workflow state not readable right now: {why[:200]}")


async def describe(client: DaprWorkflowClient, instance_id: str) -> WorkflowInstance | None:
    state = await _read_state(client, instance_id)
    if state is None:
        return None
    failure = state.failure_details
    return WorkflowInstance(
        instance_id=state.instance_id,
        workflow=state.name,
        status=state.runtime_status.name,
        created_at=state.created_at,
        last_updated_at=state.last_updated_at,
        input=_payload(state.serialized_input),
        output=_payload(state.serialized_output),
        custom_status=_payload(state.serialized_custom_status),
        failure=WorkflowFailure(type=failure.error_type, message=failure.message)
        if failure
        else None,
    )


async def _existing(client: DaprWorkflowClient, instance_id: str) -> WorkflowInstance:
    found = await describe(client, instance_id)
    if found is None:
        raise HTTPException(404, f"no workflow instance '{instance_id}'")
    return found


def checked_input(request: Request, body: StartWorkflow) -> BaseModel:
    """The workflow's input, validated against its contract and the agents it names (422
    naming what is wrong)."""
    model = WORKFLOW_INPUTS.get(body.workflow)
    if model is None:
        raise HTTPException(
            422, f"unknown workflow '{body.workflow}'; one of: {', '.join(WORKFLOW_INPUTS)}"
        )
    try:
        value: BaseModel = model.model_validate(body.input)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(input)"
        raise HTTPException(422, f"input.{where}: {first['msg']}") from None
    known = request.app.state.registry.specs
    for agent in _agents_in(body.workflow, value):
        if agent not in known:
            raise HTTPException(422, f"unknown agent '{agent}'; one of: {', '.join(known)}")
    return value


async def start_workflow(request: Request, body: StartWorkflow) -> WorkflowStarted:
    """Validate the input against the workflow's contract, then schedule it."""
    value = checked_input(request, body)
    client = _client(request)
    if body.instance_id:
        current = await describe(client, body.instance_id)
        if current is not None and not current.terminal:
            raise HTTPException(409, f"instance '{body.instance_id}' is {current.status}")
        if current is not None:
            # Reusing a finished id: forget its old steps so they are not replayed.
            await client.purge_workflow(body.instance_id)
            await _forget_steps(request, body.instance_id)
    instance_id = await client.schedule_new_workflow(
        body.workflow, input=value, instance_id=body.instance_id
    )
    log.info("workflow started", extra={"workflow": body.workflow, "instance_id": instance_id})
    return WorkflowStarted(instance_id=instance_id, workflow=body.workflow)


@router.post("", status_code=201)
async def start(body: StartWorkflow, request: Request) -> WorkflowStarted:
    return await start_workflow(request, body)


@router.post("/check", status_code=204, response_class=Response)
async def check(body: StartWorkflow, request: Request) -> Response:
    """204 when ``body`` would start (a schedule is checked when it is made); else the 422
    starting it would answer."""
    checked_input(request, body)
    return Response(status_code=204)


@router.get("", response_model_exclude_unset=True)
async def list_instances(
    request: Request, query: Annotated[WorkflowListQuery, Query()]
) -> WorkflowList:
    """Instance ids known to the workflow engine, a page at a time (Dapr's ListInstanceIDs)."""
    client = _client(request)
    ids, token = await list_ids(client, query.page_size, query.continuation_token)
    if not query.details:
        return WorkflowList(instance_ids=ids, continuation_token=token)
    found = [d for i in ids if (d := await describe(client, i)) is not None]
    return WorkflowList(instance_ids=ids, continuation_token=token, instances=found)


async def list_ids(
    client: DaprWorkflowClient, page_size: int, token: str | None
) -> tuple[list[str], str | None]:
    from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2 as pb

    # The SDK has no list call yet; the sidecar's ListInstanceIDs is on the same channel.
    inner = client._DaprWorkflowClient__obj  # type: ignore[attr-defined]
    req = pb.ListInstanceIDsRequest(pageSize=page_size)
    if token:
        req.continuationToken = token
    res = await inner._get_stub().ListInstanceIDs(req)
    next_token = res.continuationToken if res.HasField("continuationToken") else None
    return list(res.instanceIds), next_token or None


@router.get("/{instance_id}")
async def status(instance_id: InstanceId, request: Request) -> WorkflowInstance:
    return await _existing(_client(request), instance_id)


@router.get("/{instance_id}/steps")
async def steps(instance_id: InstanceId, request: Request) -> WorkflowSteps:
    """The step ledger: what each model turn and tool call recorded, and how often it ran."""
    client = dapr_client(request.app)
    found: list[WorkflowStep] = []
    start = 1
    while True:
        keys = [step_key(instance_id, n) for n in range(start, start + LEDGER_BATCH)]
        batch = await client.get_bulk_state(names.STATE_STORE, keys)
        for n, key in enumerate(keys, start=start):
            if key in batch:
                found.append(WorkflowStep.model_validate({"step": n, **batch[key].value}))
        if len(batch) < LEDGER_BATCH:
            break
        start += LEDGER_BATCH
    if not found:
        await _existing(_client(request), instance_id)  # 404 for an instance that is not
    return WorkflowSteps(instance_id=instance_id, steps=found)


@router.post("/{instance_id}/events/{event_name}")
async def raise_event(
    instance_id: InstanceId, event_name: EventName, request: Request
) -> EventRaised:
    """Deliver ``event_name`` (JSON body, maybe empty) to a running instance."""
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else None
    except json.JSONDecodeError as exc:
        raise HTTPException(422, f"event body is not JSON: {exc.msg}") from None
    client = _client(request)
    current = await _existing(client, instance_id)
    if current.terminal:
        raise HTTPException(409, f"instance '{instance_id}' is {current.status}")
    await client.raise_workflow_event(instance_id, event_name, data=data)
    return EventRaised(instance_id=instance_id, event=event_name)


async def _control(request: Request, instance_id: str, action: Control) -> ControlAccepted:
    client = _client(request)
    current = await _existing(client, instance_id)
    if current.terminal:
        raise HTTPException(409, f"instance '{instance_id}' is {current.status}")
    try:
        if action == "pause":
            await client.pause_workflow(instance_id)
        elif action == "resume":
            await client.resume_workflow(instance_id)
        else:
            await client.terminate_workflow(instance_id, recursive=True)
    except AioRpcError as exc:
        raise HTTPException(409, f"{action} refused: {exc.details()}") from None
    return ControlAccepted(instance_id=instance_id, action=action)


@router.post("/{instance_id}/pause")
async def pause(instance_id: InstanceId, request: Request) -> ControlAccepted:
    return await _control(request, instance_id, "pause")


@router.post("/{instance_id}/resume")
async def resume(instance_id: InstanceId, request: Request) -> ControlAccepted:
    return await _control(request, instance_id, "resume")


@router.post("/{instance_id}/terminate")
async def terminate(instance_id: InstanceId, request: Request) -> ControlAccepted:
    return await _control(request, instance_id, "terminate")


async def _forget_steps(request: Request, instance_id: str) -> None:
    ledger = await steps(instance_id, request)
    client = dapr_client(request.app)
    for entry in ledger.steps:
        await client.delete_state(names.STATE_STORE, step_key(instance_id, entry.step))


@router.delete("/{instance_id}")
async def purge(instance_id: InstanceId, request: Request) -> WorkflowPurged:
    """Delete a finished instance's history (and its children's) and its step ledger."""
    client = _client(request)
    current = await _existing(client, instance_id)
    if not current.terminal:
        raise HTTPException(
            409, f"instance '{instance_id}' is {current.status}; terminate it first"
        )
    try:
        await client.purge_workflow(instance_id, recursive=True)
    except AioRpcError as exc:
        if exc.code() != StatusCode.NOT_FOUND:
            raise HTTPException(409, f"purge refused: {exc.details()}") from None
    await _forget_steps(request, instance_id)
    return WorkflowPurged(instance_id=instance_id)
