"""Schedules: what to start (an agent run or a workflow) and when (cron, interval, one-shot).

No Dapr and no FastAPI here; the request and answer models, with the cron and time-zone
checks, are the scheduler's contract (``agentia.contracts.scheduler``). A schedule is
validated once, turned into a Dapr job (the Jobs API keeps the timing in the scheduler
control plane, so it survives restarts of every Agentia process), and at each fire the tick
it belongs to gives a deterministic run id: a re-delivered fire of the same tick starts
nothing new.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cronsim import CronSim

from agentia.contracts.scheduler import (
    Schedule,
    ScheduleError,
    ScheduleRequest,
    parse_cron,
    zone,
)


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
