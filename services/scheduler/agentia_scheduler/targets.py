"""What a schedule starts, checked when the schedule is made and started at each fire.

A run is the gateway's (``POST internal/runs``: recorded, laned on its thread, readable as
``GET /runs/{id}``); a workflow is agent-runner's. Both are asked through Dapr invocation,
and both check a target the same way when a schedule is created (``…/check``), so an
unknown agent, workflow, thread or an empty input is refused then, naming the field, not
at every fire.
"""

from __future__ import annotations

from typing import Any

import httpx

from agentia import names
from agentia.contracts import InvokeError
from agentia.contracts.gateway import GatewayClient, ScheduledRun
from agentia.contracts.scheduler import RunTarget, ScheduleError, WorkflowTarget
from agentia.contracts.workflows import StartWorkflow, WorkflowsClient
from agentia.dapr import DaprClient, DaprError

REFUSALS = frozenset({400, 404, 409, 422})


class FireRefused(Exception):
    """The service refused what the fire asked for (a thread deleted since, an agent gone):
    firing again would be refused again. The schedule shows it as its last error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def scheduled_run(target: RunTarget, run_id: str, meta: dict[str, Any]) -> ScheduledRun:
    return ScheduledRun(
        run_id=run_id,
        agent_id=target.agent_id,
        input=target.input,
        thread_id=target.thread_id,
        metadata={**target.metadata, **meta},
        owner=target.owner,
    )


def workflows(client: DaprClient) -> WorkflowsClient:
    """agent-runner's workflow API, through this service's sidecar."""
    return WorkflowsClient(client.call)


async def check(client: DaprClient, target: object) -> None:
    """Refuse (ScheduleError, naming the field) a target whose fires would all be refused;
    a service that cannot answer is a DaprError (try again later)."""
    if isinstance(target, RunTarget):
        await _check_run(client, target)
    elif isinstance(target, WorkflowTarget):
        await _check_workflow(client, target)


async def _check_run(client: DaprClient, target: RunTarget) -> None:
    app = names.GATEWAY
    try:
        await GatewayClient(client.call).check_run(scheduled_run(target, "schedule-check", {}))
    except httpx.HTTPError as exc:
        raise DaprError(503, f"{app} cannot check the target now: {type(exc).__name__}") from None
    except InvokeError as exc:
        if exc.status in REFUSALS:
            raise ScheduleError(f"target: {exc.reason}") from None
        raise DaprError(503, f"{app} cannot check the target now ({exc.status})") from None


async def _check_workflow(client: DaprClient, target: WorkflowTarget) -> None:
    app = names.AGENT_RUNNER
    try:
        await workflows(client).check(StartWorkflow(workflow=target.workflow, input=target.input))
    except httpx.HTTPError as exc:
        raise DaprError(503, f"{app} cannot check the target now: {type(exc).__name__}") from None
    except InvokeError as exc:
        if exc.status in REFUSALS:
            raise ScheduleError(f"target: {exc.reason}") from None
        raise DaprError(503, f"{app} cannot check the target now ({exc.status})") from None


async def start_run(client: DaprClient, target: RunTarget, rid: str, meta: dict[str, Any]) -> None:
    """The tick's run, created by the gateway (the tick's id: a repeated fire is the same
    run). Raises FireRefused for a refusal, DaprError when the gateway cannot answer."""
    try:
        await GatewayClient(client.call).create_run(scheduled_run(target, rid, meta))
    except InvokeError as exc:
        if exc.status in REFUSALS or exc.status == 429:
            raise FireRefused(f"the gateway refused the run ({exc.status}): {exc.reason}") from None
        reason = f"the gateway could not start the run: {exc.reason}"
        raise DaprError(exc.status, reason) from None
