"""schedule_agent_run: ask the scheduler service (Dapr invocation, its typed client in
``agentia.contracts.scheduler``) to run an agent later or repeatedly. Changes something and
needs a person's approval."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError

from agentia.contracts.scheduler import (
    SCHEDULE_ID_PATTERN,
    RunTarget,
    SchedulerClient,
    ScheduleRequest,
)
from agentia_toolmcp.server import REQUIRES_APPROVAL, ToolServer
from agentia_toolmcp.sidecar import Sidecar, tool_call

SCHEDULE = ToolAnnotations(
    title="Schedule an agent run",
    readOnlyHint=False,
    destructiveHint=True,
    idempotentHint=False,
    openWorldHint=False,
)


def schedule_request(
    name: str,
    agent_id: str,
    input: str,
    cron: str | None,
    every_seconds: float | None,
    at: datetime | None,
) -> ScheduleRequest:
    """The scheduler's request: schedule ``name`` runs ``agent_id`` with ``input``, at
    exactly one of cron, every_seconds and at. What the scheduler would refuse (a bad cron,
    an interval under a second) is refused here with its reason, as a ToolError."""
    given = {"cron": cron, "every_seconds": every_seconds, "at": at}
    if sum(value is not None for value in given.values()) != 1:
        raise ToolError("cron: give exactly one of cron, every_seconds or at")
    try:
        return ScheduleRequest(
            schedule_id=name,
            cron=cron,
            interval_s=every_seconds,
            at=at,
            target=RunTarget(agent_id=agent_id, input=input),
        )
    except ValidationError as exc:
        reason = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ToolError(f"schedule_agent_run: {reason}") from None


def register(server: ToolServer, sidecar: Sidecar, scheduler_app_id: str) -> None:
    """Add schedule_agent_run, calling app ``scheduler_app_id``."""

    async def schedule_agent_run(
        name: Annotated[str, Field(min_length=1, max_length=63, pattern=SCHEDULE_ID_PATTERN)],
        agent_id: Annotated[str, Field(min_length=1, max_length=128)],
        input: Annotated[str, Field(max_length=8000)],
        cron: Annotated[str | None, Field(max_length=120)] = None,
        every_seconds: Annotated[float | None, Field(ge=1)] = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Schedule agent `agent_id` to run with `input`: on a cron expression ("0 9 * * 1"),
        every N seconds, or once at an ISO 8601 time. Give exactly one of the three. `name`
        (lowercase letters, digits and '-') is the schedule's id."""
        req = schedule_request(name, agent_id, input, cron, every_seconds, at)
        timeout = server.timeout_for("schedule_agent_run")
        call = tool_call(sidecar, what="schedule_agent_run", timeout=timeout)
        created = await SchedulerClient(call, scheduler_app_id).create(req)
        return created.as_json()

    server.add_tool(schedule_agent_run, annotations=SCHEDULE, meta={REQUIRES_APPROVAL: True})
