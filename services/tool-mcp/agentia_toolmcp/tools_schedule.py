"""schedule_agent_run: ask the scheduler service (Dapr invocation, ``POST internal/schedules``)
to run an agent later or repeatedly. Changes something and needs a person's approval."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from agentia_toolmcp.server import REQUIRES_APPROVAL, ToolServer
from agentia_toolmcp.sidecar import Sidecar, call_service

SCHEDULE = ToolAnnotations(
    title="Schedule an agent run",
    readOnlyHint=False,
    destructiveHint=True,
    idempotentHint=False,
    openWorldHint=False,
)


def schedule_body(
    name: str,
    agent_id: str,
    input: str,
    cron: str | None,
    every_seconds: float | None,
    at: datetime | None,
) -> dict[str, Any]:
    """The scheduler's request body; exactly one of cron, every_seconds and at."""
    given = {"cron": cron, "every_seconds": every_seconds, "at": at}
    chosen = {k: v for k, v in given.items() if v is not None}
    if len(chosen) != 1:
        raise ToolError("cron: give exactly one of cron, every_seconds or at")
    body: dict[str, Any] = {"name": name, "agent_id": agent_id, "input": input}
    for key, value in chosen.items():
        body[key] = value.isoformat() if isinstance(value, datetime) else value
    return body


def register(server: ToolServer, sidecar: Sidecar, scheduler_app_id: str) -> None:
    """Add schedule_agent_run, calling app ``scheduler_app_id``."""

    async def schedule_agent_run(
        name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")],
        agent_id: Annotated[str, Field(min_length=1, max_length=128)],
        input: Annotated[str, Field(max_length=8000)],
        cron: Annotated[str | None, Field(max_length=120)] = None,
        every_seconds: Annotated[float | None, Field(gt=0)] = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Schedule agent `agent_id` to run with `input`: on a cron expression ("0 9 * * 1"),
        every N seconds, or once at an ISO 8601 time. Give exactly one of the three."""
        body = schedule_body(name, agent_id, input, cron, every_seconds, at)
        answer = await call_service(
            sidecar,
            scheduler_app_id,
            "internal/schedules",
            body,
            what="schedule_agent_run",
            timeout=server.timeout_for("schedule_agent_run"),
        )
        return dict(answer) if isinstance(answer, dict) else {"scheduled": body["name"]}

    server.add_tool(schedule_agent_run, annotations=SCHEDULE, meta={REQUIRES_APPROVAL: True})
