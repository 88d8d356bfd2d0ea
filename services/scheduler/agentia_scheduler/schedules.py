"""Schedules: what to start (an agent run or a workflow) and when (cron, interval, one-shot).

No Dapr here. A schedule is validated once, turned into a Dapr job (the Jobs API keeps the
timing in the scheduler control plane, so it survives restarts of every Agentia process),
and at each fire the tick it belongs to gives a deterministic run id: a re-delivered fire
of the same tick starts nothing new.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentia import names

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
SECONDS_PART = re.compile(r"^(\*|\d{1,2}(-\d{1,2})?)(/\d{1,2})?$")
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class ScheduleError(ValueError):
    """A schedule is invalid; the message says which field and why."""


def _seconds(field: str) -> list[int]:
    """The seconds a six-field cron's first field allows (``*``, ``a-b``, ``*/n``, lists)."""
    found: set[int] = set()
    for part in field.split(","):
        match = SECONDS_PART.match(part)
        if not match:
            raise ScheduleError(f"cron: bad seconds field '{field}'")
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            low, high = 0, 59
        else:
            low_text, _, high_text = base.partition("-")
            low = int(low_text)
            high = int(high_text) if high_text else (59 if step_text else low)
        if not (0 <= low <= high <= 59) or not 1 <= step <= 59:
            raise ScheduleError(f"cron: seconds out of range in '{field}'")
        found.update(range(low, high + 1, step))
    return sorted(found)


def parse_cron(expr: str) -> tuple[list[int], str]:
    """(allowed seconds, five-field expression) of a 5- or 6-field cron or a descriptor."""
    text = " ".join(expr.split())
    text = DESCRIPTORS.get(text.lower(), text)
    fields = text.split(" ")
    if len(fields) == 5:
        seconds, five = [0], text
    elif len(fields) == 6:
        seconds, five = _seconds(fields[0]), " ".join(fields[1:])
    else:
        raise ScheduleError(
            f"cron: '{expr}' has {len(fields)} fields; use 5 (min hour dom month dow), "
            "6 (with seconds first) or @hourly/@daily/@weekly/@monthly/@yearly"
        )
    try:
        CronSim(five, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ScheduleError(f"cron: '{expr}': {exc}") from None
    return seconds, five


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"timezone: unknown time zone '{name}' (use an IANA name)") from None


class RunTarget(BaseModel):
    """Start a run of an agent (published on ``runs.requested``)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["run"] = Field(default="run", description="An agent run.")
    agent_id: str = Field(min_length=1, description="Agent definition name.")
    input: Any = Field(default=None, description="The run's input.")
    thread_id: str | None = Field(default=None, description="Thread to run on, if any.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Passed to the run.")
    owner: str | None = Field(
        default=None, description="API key whose token budget the runs count against."
    )


class WorkflowTarget(BaseModel):
    """Start a workflow instance on agent-runner."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["workflow"] = Field(description="A workflow.")
    workflow: str = Field(min_length=1, description="Registered workflow name, e.g. AgentLoop.")
    input: dict[str, Any] = Field(description="The workflow's input.")


class DrainRequest(BaseModel):
    """How a drain takes a topic's backlog: in batches of ``batch_size`` runs, each batch
    started and waited for before the next, until the queue is empty."""

    model_config = ConfigDict(extra="forbid")
    topic: str = Field(default=names.TOPIC_RUNS_BATCH, description="The topic to drain.")
    batch_size: int = Field(default=20, ge=1, le=1000, description="Runs started at a time.")
    batch_timeout_s: float = Field(
        default=60.0, ge=1, le=100, description="Wait at most this long for a batch's runs."
    )
    idle_s: float = Field(
        default=2.0, ge=0.1, le=60, description="The queue is empty when nothing arrives this long."
    )
    max_seconds: float = Field(
        default=600.0, ge=1, le=3600, description="Stop after this long, whatever is left."
    )

    @field_validator("topic")
    @classmethod
    def _drainable(cls, value: str) -> str:
        if value not in names.DRAINABLE_TOPICS:
            raise ValueError(
                f"'{value}' is not drained; one of: {', '.join(names.DRAINABLE_TOPICS)}"
            )
        return value


class DrainTarget(DrainRequest):
    """Drain a topic's backlog at each fire: start the runs waiting on it, batch by batch."""

    kind: Literal["drain"] = Field(description="A drain of a pull-based topic.")


# Not a tagged union: a run target may leave out "kind".
Target = RunTarget | WorkflowTarget | DrainTarget


class ScheduleRequest(BaseModel):
    """A schedule to create: exactly one of ``cron``, ``interval_s`` and ``at``."""

    model_config = ConfigDict(extra="forbid")
    schedule_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="Id (lowercase, digits, '-'); generated."
    )
    replace: bool = Field(
        default=False,
        description="Replace the schedule of this id once the new one is checked (else 409).",
    )
    cron: str | None = Field(default=None, description="Cron: 5 fields, or 6 with seconds first.")
    interval_s: float | None = Field(default=None, ge=1, description="Fixed interval, seconds.")
    at: datetime | None = Field(default=None, description="One shot at this time.")
    timezone: str = Field(default="UTC", description="IANA time zone of cron and naive 'at'.")
    target: Target = Field(description="What to start at each fire.")
    end_at: datetime | None = Field(default=None, description="No fires after this time.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Kept with the schedule.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            parse_cron(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleRequest:
        given = [k for k in ("cron", "interval_s", "at") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of cron, interval_s, at (got {given or 'none'})")
        return self


class Schedule(ScheduleRequest):
    """A stored schedule (also the data of its Dapr job)."""

    schedule_id: str = Field(pattern=ID_PATTERN, description="The schedule's id.")
    created_at: datetime = Field(description="When it was created (UTC).")
    anchor: datetime = Field(description="First fire of an interval schedule (UTC).")


def build(req: ScheduleRequest, now: datetime) -> Schedule:
    """Validate times against ``now`` and fix the id and the interval anchor."""
    tz = zone(req.timezone)
    at = req.at.replace(tzinfo=tz) if req.at and req.at.tzinfo is None else req.at
    if at is not None and at <= now:
        raise ScheduleError(f"at: {at.isoformat()} is in the past")
    end = req.end_at.replace(tzinfo=tz) if req.end_at and req.end_at.tzinfo is None else req.end_at
    if end is not None and end <= now:
        raise ScheduleError(f"end_at: {end.isoformat()} is in the past")
    # Whole seconds, a moment ahead: the job's first fire, and the base of interval ticks.
    anchor = now.replace(microsecond=0) + timedelta(seconds=2)
    return Schedule.model_validate(
        {
            **req.model_dump(exclude={"replace"}),
            "schedule_id": req.schedule_id or f"s-{uuid.uuid4().hex[:12]}",
            "at": at,
            "end_at": end,
            "created_at": now,
            "anchor": anchor,
        }
    )


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def dapr_job(schedule: Schedule) -> dict[str, Any]:
    """The body of Dapr's ``POST /v1.0-alpha1/jobs/{name}`` for ``schedule``."""
    body: dict[str, Any] = {"data": schedule.model_dump(mode="json"), "overwrite": False}
    if schedule.at is not None:
        body["dueTime"] = _rfc3339(schedule.at)
    elif schedule.interval_s is not None:
        body["schedule"] = f"@every {schedule.interval_s:g}s"
        body["dueTime"] = _rfc3339(schedule.anchor)
    else:
        seconds, five = parse_cron(schedule.cron or "")
        six = f"{','.join(map(str, seconds))} {five}"
        # Dapr's cron parser takes a time zone prefix, so DST is handled where it fires.
        body["schedule"] = f"CRON_TZ={schedule.timezone} {six}"
    if schedule.end_at is not None and schedule.at is None:
        body["ttl"] = _rfc3339(schedule.end_at)
    return body


def tick_of(schedule: Schedule, now: datetime) -> datetime:
    """The scheduled time the fire arriving at ``now`` belongs to (at or before ``now``)."""
    if schedule.at is not None:
        return schedule.at
    if schedule.interval_s is not None:
        elapsed = (now - schedule.anchor).total_seconds()
        count = max(0, math.floor(elapsed / schedule.interval_s + 1e-6))
        return schedule.anchor + timedelta(seconds=count * schedule.interval_s)
    seconds, five = parse_cron(schedule.cron or "")
    local = now.astimezone(zone(schedule.timezone))
    start = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for minute in CronSim(five, start, reverse=True):
        for second in reversed(seconds):
            candidate = minute + timedelta(seconds=second)
            if candidate <= local:
                return candidate.astimezone(UTC)
    raise ScheduleError("cron: no fire time found")  # unreachable for a valid expression


def next_fire(schedule: Schedule, now: datetime) -> datetime | None:
    """The next scheduled time after ``now`` (None when the schedule is over)."""
    if schedule.end_at is not None and now >= schedule.end_at:
        return None
    if schedule.at is not None:
        return schedule.at if schedule.at > now else None
    if schedule.interval_s is not None:
        if now < schedule.anchor:
            return schedule.anchor
        return tick_of(schedule, now) + timedelta(seconds=schedule.interval_s)
    seconds, five = parse_cron(schedule.cron or "")
    local = now.astimezone(zone(schedule.timezone))
    for minute in CronSim(five, local.replace(second=0, microsecond=0) - timedelta(seconds=1)):
        for second in seconds:
            candidate = minute + timedelta(seconds=second)
            if candidate > local:
                return candidate.astimezone(UTC)
    return None


def run_id(schedule_id: str, tick: datetime) -> str:
    """Deterministic per schedule and tick: a re-fire of the same tick is the same run."""
    return f"sched-{schedule_id}-{tick.astimezone(UTC):%Y%m%dT%H%M%SZ}"
