"""Crons (the Agent Protocol's / LangGraph's names): scheduled runs of an agent, on a thread
or stateless, held by the scheduler service (its timing in Dapr's Jobs API). The gateway
only translates; it reaches the scheduler through Dapr service invocation, with the
scheduler's typed client (``agentia.contracts.scheduler``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentia.contracts.scheduler import (
    SCHEDULE_ID_PATTERN,
    ScheduleQuery,
    SchedulerClient,
    ScheduleRequest,
    ScheduleView,
)
from agentia_gateway.deps import Caller, Scheduler
from agentia_gateway.schemas import ERRORS, ID_PATTERN
from agentia_gateway.security import Principal
from agentia_gateway.upstream import request as scheduler_request

router = APIRouter(tags=["Crons"], responses=ERRORS)
CronId = Annotated[str, Path(pattern=SCHEDULE_ID_PATTERN, description="The cron's id.")]
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
    # LangGraph's other cron fields, sent by its SDKs: accepted; those asking for what
    # agents here do not have must be empty.
    enabled: bool = Field(default=True, description="Only true: delete a cron to stop it.")
    config: dict[str, Any] | None = Field(default=None, description="Accepted and ignored.")
    context: dict[str, Any] | None = Field(default=None, description="Accepted and ignored.")
    on_run_completed: Literal["delete", "keep"] | None = Field(
        default=None, description="Accepted: a cron's runs are kept, readable by their id."
    )
    multitask_strategy: Literal["reject", "rollback", "interrupt", "enqueue"] | None = Field(
        default=None, description="Accepted: a fire on a busy thread waits its turn (enqueue)."
    )
    stream_mode: Any = Field(default=None, description="Accepted and ignored (no stream).")
    stream_subgraphs: bool | None = Field(default=None, description="Accepted and ignored.")
    stream_resumable: bool | None = Field(default=None, description="Accepted and ignored.")
    durability: str | None = Field(default=None, description="Accepted and ignored.")
    checkpoint_during: bool | None = Field(default=None, description="Accepted and ignored.")
    webhook: str | None = Field(default=None, description="Not supported: must be absent.")
    interrupt_before: Any = Field(default=None, description="Not supported: must be empty.")
    interrupt_after: Any = Field(default=None, description="Not supported: must be empty.")

    @model_validator(mode="after")
    def _check(self) -> CronCreate:
        if not self.enabled:
            raise ValueError("enabled: a disabled cron is not supported (delete it instead)")
        if self.webhook is not None:
            raise ValueError("webhook is not supported: read the runs by their ids")
        if self.interrupt_before or self.interrupt_after:
            raise ValueError("interrupt_before/interrupt_after are not supported")
        return self


class CronUpdate(CronCreate):
    """What to change in a cron (LangGraph's update): the fields given replace its own."""

    enabled: bool = Field(default=True, description="Only true: delete a cron to stop it.")
    timezone: str | None = Field(  # type: ignore[assignment]
        default=None, description="IANA time zone of the cron expression."
    )
    metadata: dict[str, Any] | None = Field(  # type: ignore[assignment]
        default=None, description="Replaces the cron's metadata."
    )


class CronCount(BaseModel):
    """Which crons to count."""

    model_config = ConfigDict(extra="forbid")
    assistant_id: str | None = Field(default=None, description="Only this agent's.")
    thread_id: str | None = Field(default=None, description="Only this thread's.")


class CronSearch(BaseModel):
    """Which crons to list (LangGraph's sorting and selection accepted)."""

    model_config = ConfigDict(extra="forbid")
    assistant_id: str | None = Field(default=None, description="Only this agent's.")
    thread_id: str | None = Field(default=None, description="Only this thread's.")
    limit: int = Field(default=10, ge=1, le=1000, description="At most this many.")
    offset: int = Field(default=0, ge=0, description="Skip this many.")
    sort_by: str | None = Field(default=None, description="Accepted: by creation time.")
    sort_order: Literal["asc", "desc"] | None = Field(default=None, description="Accepted.")
    select: list[str] | None = Field(default=None, description="Accepted and ignored.")
    enabled: bool | None = Field(default=None, description="Accepted: every cron is enabled.")


def as_cron(view: ScheduleView) -> dict[str, Any]:
    """A scheduler schedule as LangGraph's Cron."""
    schedule = view.as_json()
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


async def _create(
    schedules: SchedulerClient,
    caller: Principal,
    body: CronCreate,
    thread_id: str | None,
    cron_id: str | None = None,
) -> dict[str, Any]:
    agent = body.assistant_id or body.agent_id or "assistant"
    # The key that made the cron owns its runs: their usage counts against its budget, and a
    # fire while that budget is used up starts nothing (the scheduler asks us first).
    owner = caller.id
    fields: dict[str, Any] = {
        "target": {"agent_id": agent, "input": body.input, "thread_id": thread_id, "owner": owner},
        "cron": body.schedule,
        "interval_s": body.interval_s,
        "timezone": body.timezone,
        "metadata": body.metadata,
        "end_at": body.end_time,
    }
    if cron_id is not None:  # an update: the cron made again under its id
        fields.update(schedule_id=cron_id, replace=True)
    # A cron or time zone the scheduler would refuse is refused here, with its reason.
    schedule = scheduler_request(ScheduleRequest, **fields)
    return as_cron(await schedules.create(schedule))


@router.post("/runs/crons")
async def create_cron(body: CronCreate, schedules: Scheduler, caller: Caller) -> dict[str, Any]:
    """Run an agent on a schedule, each run stateless."""
    return await _create(schedules, caller, body, None)


@router.post("/threads/{thread_id}/runs/crons")
async def create_thread_cron(
    thread_id: ThreadId, body: CronCreate, schedules: Scheduler, caller: Caller
) -> dict[str, Any]:
    """Run an agent on a schedule, each run on this thread."""
    return await _create(schedules, caller, body, thread_id)


@router.post("/runs/crons/search")
async def search_crons(body: CronSearch, schedules: Scheduler) -> list[dict[str, Any]]:
    query = ScheduleQuery(
        agent_id=body.assistant_id or None,
        thread_id=body.thread_id or None,
        limit=body.limit,
        offset=body.offset,
    )
    return [as_cron(s) for s in await schedules.list_schedules(query)]


@router.post("/runs/crons/count", response_model=int)
async def count_crons(body: CronCount, schedules: Scheduler) -> int:
    search = CronSearch(assistant_id=body.assistant_id, thread_id=body.thread_id, limit=1000)
    return len(await search_crons(search, schedules))


@router.patch("/runs/crons/{cron_id}")
async def update_cron(
    cron_id: CronId, body: CronUpdate, schedules: Scheduler, caller: Caller
) -> dict[str, Any]:
    """Change a cron: the fields given replace its own (it is made again under its id,
    checked as a new one is; a change refused leaves the cron as it was)."""
    current = as_cron(await schedules.get(cron_id))
    given = body.model_dump(exclude_unset=True)
    timing = {"schedule", "interval_s"} & given.keys()
    merged = CronCreate(
        assistant_id=given.get("assistant_id") or given.get("agent_id") or current["assistant_id"],
        schedule=given.get("schedule") if timing else current["schedule"],
        interval_s=given.get("interval_s") if timing else current["interval_s"],
        timezone=given.get("timezone") or current["timezone"] or "UTC",
        input=given["input"] if "input" in given else current["payload"]["input"],
        metadata=given["metadata"] if given.get("metadata") is not None else current["metadata"],
        end_time=given["end_time"] if "end_time" in given else current["end_time"],
    )
    return await _create(schedules, caller, merged, current["thread_id"], cron_id)


@router.get("/runs/crons/{cron_id}")
async def get_cron(cron_id: CronId, schedules: Scheduler) -> dict[str, Any]:
    return as_cron(await schedules.get(cron_id))


@router.delete("/runs/crons/{cron_id}")
async def delete_cron(cron_id: CronId, schedules: Scheduler) -> dict[str, Any]:
    deleted = await schedules.delete(cron_id)
    return {"cron_id": deleted.schedule_id, "status": "deleted"}
