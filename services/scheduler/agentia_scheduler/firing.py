"""What happens when a schedule fires: start its run or workflow, once per tick.

The sidecar calls ``POST /job/{name}`` with the schedule as the body, at least once per
tick. The tick gives a deterministic run id; a fire record (first write wins) marks the
tick as taken, and the run id makes a repeated publish a duplicate the runner ignores.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from agentia import names
from agentia.dapr import DaprClient, DaprError, ETagMismatch
from agentia.events import RunRequested
from agentia_scheduler.schedules import RunTarget, Schedule, run_id, tick_of

log = logging.getLogger(__name__)


def fire_key(schedule_id: str, rid: str) -> str:
    return f"schedule-fire:{schedule_id}:{rid}"


def stats_key(schedule_id: str) -> str:
    return f"schedule-stats:{schedule_id}"


async def fire(client: DaprClient, schedule: Schedule, now: datetime | None = None) -> str:
    """Start what ``schedule`` starts for the tick of ``now``; returns the run id."""
    now = now or datetime.now(UTC)
    tick = tick_of(schedule, now)
    rid: str = run_id(schedule.schedule_id, tick)
    key = fire_key(schedule.schedule_id, rid)
    record = {"run_id": rid, "tick": tick.isoformat(), "fired_at": now.isoformat(), "done": False}
    try:
        await client.save_state(names.STATE_STORE, key, record, first_write=True)
    except ETagMismatch:
        item = await client.get_state(names.STATE_STORE, key)
        if item is not None and item.value.get("done"):
            log.info("repeated fire ignored", extra={"run_id": rid})
            return rid
        # Taken but not finished (a crash in between): start again; the run id dedups it.
    await _start(client, schedule, rid, tick)
    await client.save_state(names.STATE_STORE, key, {**record, "done": True})
    await _count(client, schedule.schedule_id, rid, tick)
    log.info("schedule fired", extra={"schedule_id": schedule.schedule_id, "run_id": rid})
    return rid


async def _start(client: DaprClient, schedule: Schedule, rid: str, tick: datetime) -> None:
    target = schedule.target
    meta = {"schedule_id": schedule.schedule_id, "scheduled_for": tick.isoformat()}
    if isinstance(target, RunTarget):
        event = RunRequested(
            event_id=rid,
            run_id=rid,
            agent_id=target.agent_id,
            input=target.input,
            thread_id=target.thread_id,
            metadata={**target.metadata, **meta},
        )
        await client.publish(names.TOPIC_RUNS_REQUESTED, event)
        return
    seen = await client.invoke(names.AGENT_RUNNER, f"internal/workflows/{rid}", http_method="GET")
    if seen.status_code == 200:
        return  # this tick's instance exists already
    resp = await client.invoke(
        names.AGENT_RUNNER,
        "internal/workflows",
        json_body={"workflow": target.workflow, "input": target.input, "instance_id": rid},
    )
    if resp.status_code not in (201, 409):
        raise DaprError(resp.status_code, f"agent-runner refused the workflow: {resp.text[:300]}")


async def _count(client: DaprClient, schedule_id: str, rid: str, tick: datetime) -> None:
    """Fire statistics for operators; a lost race only loses a count, never a run."""
    key = stats_key(schedule_id)
    item = await client.get_state(names.STATE_STORE, key)
    stats: dict[str, Any] = dict(item.value) if item else {"fires": 0}
    stats.update(fires=int(stats.get("fires", 0)) + 1, last_run_id=rid, last_tick=tick.isoformat())
    try:
        await client.save_state(names.STATE_STORE, key, stats, etag=item.etag if item else None)
    except ETagMismatch:
        log.info("fire count race lost", extra={"schedule_id": schedule_id})
