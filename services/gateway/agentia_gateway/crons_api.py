"""Crons (the Agent Protocol's / LangGraph's names): scheduled runs of an agent, on a thread
or stateless, held by the scheduler service (its timing in Dapr's Jobs API). The gateway
only translates; it reaches the scheduler through Dapr service invocation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from agentia import names
from agentia.service import dapr_client
from agentia_gateway.schemas import ERRORS, ID_PATTERN
from agentia_gateway.upstream import call

router = APIRouter(tags=["Crons"], responses=ERRORS)
BASE = "internal/schedules"
CronId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="The cron's id.")]
ThreadId = Annotated[str, Path(pattern=ID_PATTERN, description="The thread's id.")]


class CronCreate(BaseModel):
    """A scheduled run: LangGraph's fields, plus Agentia's interval and time zone."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    assistant_id: str | None = Field(default=None, description="Agent to run (or agent_id).")
    agent_id: str | None = Field(default=None, description="Agent to run (or assistant_id).")
    schedule: str | None = Field(
        default=None, description="Cron expression: 5 fields, or 6 with seconds first."
    )
    interval_s: float | None = Field(default=None, ge=1, description="Or: every N seconds.")
    timezone: str = Field(default="UTC", description="IANA time zone of the cron expression.")
    input: Any = Field(default=None, description="The run's input, as for POST /runs.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Kept with the cron.")
    end_time: datetime | None = Field(default=None, description="No runs after this time.")


class CronSearch(BaseModel):
    """Which crons to list."""

    model_config = ConfigDict(extra="forbid")
    assistant_id: str | None = Field(default=None, description="Only this agent's.")
    thread_id: str | None = Field(default=None, description="Only this thread's.")
    limit: int = Field(default=10, ge=1, le=1000, description="At most this many.")
    offset: int = Field(default=0, ge=0, description="Skip this many.")


def as_cron(schedule: dict[str, Any]) -> dict[str, Any]:
    """A scheduler schedule as LangGraph's Cron."""
    target = schedule.get("target") or {}
    return {
        "cron_id": schedule["schedule_id"],
        "assistant_id": target.get("agent_id"),
        "thread_id": target.get("thread_id"),
        "schedule": schedule.get("cron"),
        "interval_s": schedule.get("interval_s"),
        "at": schedule.get("at"),
        "timezone": schedule.get("timezone"),
        "end_time": schedule.get("end_at"),
        "created_at": schedule.get("created_at"),
        "updated_at": schedule.get("created_at"),
        "next_run_date": schedule.get("next_run"),
        "payload": {"assistant_id": target.get("agent_id"), "input": target.get("input")},
        "metadata": schedule.get("metadata") or {},
        "runs": schedule.get("fires", 0),
        "last_run_id": schedule.get("last_run_id"),
        "skipped": schedule.get("skipped", 0),
        "last_skip": schedule.get("last_skip"),
        # A fire the gateway or agent-runner refused (a thread deleted since, an agent gone).
        "errors": schedule.get("errors", 0),
        "last_error": schedule.get("last_error"),
    }


async def _create(request: Request, body: CronCreate, thread_id: str | None) -> dict[str, Any]:
    agent = body.assistant_id or body.agent_id or "assistant"
    # The key that made the cron owns its runs: their usage counts against its budget, and a
    # fire while that budget is used up starts nothing (the scheduler asks us first).
    owner = request.state.principal.id
    schedule: dict[str, Any] = {
        "target": {"agent_id": agent, "input": body.input, "thread_id": thread_id, "owner": owner},
        "timezone": body.timezone,
        "metadata": body.metadata,
        "end_at": body.end_time.isoformat() if body.end_time else None,
    }
    if body.schedule is not None:
        schedule["cron"] = body.schedule
    if body.interval_s is not None:
        schedule["interval_s"] = body.interval_s
    created = await call(dapr_client(request.app), names.SCHEDULER, BASE, body=schedule)
    return as_cron(created)


@router.post("/runs/crons")
async def create_cron(body: CronCreate, request: Request) -> dict[str, Any]:
    """Run an agent on a schedule, each run stateless."""
    return await _create(request, body, None)


@router.post("/threads/{thread_id}/runs/crons")
async def create_thread_cron(
    thread_id: ThreadId, body: CronCreate, request: Request
) -> dict[str, Any]:
    """Run an agent on a schedule, each run on this thread."""
    return await _create(request, body, thread_id)


@router.post("/runs/crons/search")
async def search_crons(body: CronSearch, request: Request) -> list[dict[str, Any]]:
    query = f"?limit={body.limit}&offset={body.offset}"
    if body.assistant_id:
        query += f"&agent_id={body.assistant_id}"
    if body.thread_id:
        query += f"&thread_id={body.thread_id}"
    found = await call(dapr_client(request.app), names.SCHEDULER, BASE + query, http_method="GET")
    return [as_cron(s) for s in found]


@router.get("/runs/crons/{cron_id}")
async def get_cron(cron_id: CronId, request: Request) -> dict[str, Any]:
    found = await call(
        dapr_client(request.app), names.SCHEDULER, f"{BASE}/{cron_id}", http_method="GET"
    )
    return as_cron(found)


@router.delete("/runs/crons/{cron_id}")
async def delete_cron(cron_id: CronId, request: Request) -> dict[str, Any]:
    await call(dapr_client(request.app), names.SCHEDULER, f"{BASE}/{cron_id}", http_method="DELETE")
    return {"cron_id": cron_id, "status": "deleted"}
