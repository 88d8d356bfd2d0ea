"""What happens when a schedule fires: start its run or workflow, once per tick.

The sidecar calls ``POST /job/{name}`` with the schedule as the body, at least once per
tick. The tick gives a deterministic run id; a fire record (first write wins) marks the
tick as taken, and the run id makes a repeated fire the same run (the gateway finds it).
A fire the gateway or agent-runner refuses is not retried: the schedule shows it as its
``last_error``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from agentia import names
from agentia.contracts import InvokeError
from agentia.contracts.scheduler import (
    DrainReport,
    DrainRequest,
    DrainTarget,
    RunTarget,
    Schedule,
    WorkflowTarget,
)
from agentia.contracts.workflows import StartWorkflow
from agentia.dapr import DaprClient, DaprError, ETagMismatch
from agentia_scheduler import metrics
from agentia_scheduler.budget_check import budget_refusal
from agentia_scheduler.schedules import run_id, tick_of
from agentia_scheduler.targets import FireRefused, start_run, workflows

log = logging.getLogger(__name__)
Drainer = Callable[[DrainRequest], Awaitable[DrainReport]]


class DrainBusy(Exception):
    """A drain is running already: the next one would only compete for the same queue."""


def fire_key(schedule_id: str, rid: str) -> str:
    return f"schedule-fire:{schedule_id}:{rid}"


def stats_key(schedule_id: str) -> str:
    return f"schedule-stats:{schedule_id}"


async def fire(
    client: DaprClient,
    schedule: Schedule,
    now: datetime | None = None,
    drainer: Drainer | None = None,
) -> str:
    """Start what ``schedule`` starts for the tick of ``now``; returns the run id (for a
    drain, the tick's id: a drain's runs keep the ids they were published with)."""
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
    refusal = await _refused(client, schedule.target)
    if refusal is not None:
        await client.save_state(
            names.STATE_STORE, key, {**record, "done": True, "skipped": refusal}
        )
        await _count(client, schedule.schedule_id, rid, tick, None, skipped=refusal)
        metrics.SKIPS.inc()
        log.info("fire skipped", extra={"schedule_id": schedule.schedule_id, "why": refusal})
        return rid
    try:
        drained = await _start(client, schedule, rid, tick, drainer)
    except FireRefused as refused:
        # Firing again would be refused again: the tick is done, and the schedule says why.
        await client.save_state(
            names.STATE_STORE, key, {**record, "done": True, "error": refused.reason}
        )
        await _count(client, schedule.schedule_id, rid, tick, None, error=refused.reason)
        log.warning(
            "fire refused", extra={"schedule_id": schedule.schedule_id, "why": refused.reason}
        )
        return rid
    metrics.FIRES.labels(schedule.target.kind).inc()
    await client.save_state(names.STATE_STORE, key, {**record, "done": True})
    await _count(client, schedule.schedule_id, rid, tick, drained)
    log.info("schedule fired", extra={"schedule_id": schedule.schedule_id, "run_id": rid})
    return rid


async def _refused(client: DaprClient, target: object) -> str | None:
    """Why the tick's run must not start (its owner's budget is used up), or None; raises
    OwnerGone when the owner key is gone."""
    if not isinstance(target, RunTarget) or not target.owner:
        return None
    reason: str | None = await budget_refusal(client, target.owner, target.agent_id)
    return reason


async def _start(
    client: DaprClient, schedule: Schedule, rid: str, tick: datetime, drainer: Drainer | None
) -> DrainReport | None:
    target = schedule.target
    meta = {"schedule_id": schedule.schedule_id, "scheduled_for": tick.isoformat()}
    if isinstance(target, DrainTarget):
        if drainer is None:
            raise DaprError(503, "this scheduler cannot drain (no streaming subscription)")
        try:
            report = await drainer(target)
        except DrainBusy:
            return None  # this tick's work is being done by the drain still running
        if report.stopped.startswith("error"):
            # Not marked done: the Jobs API re-delivers the fire and the next drain goes on.
            raise DaprError(503, f"drain of {target.topic} stopped: {report.stopped}")
        return report
    if isinstance(target, RunTarget):
        await start_run(client, target, rid, meta)
        return None
    await _start_workflow(client, target, rid)
    return None


async def _start_workflow(client: DaprClient, target: WorkflowTarget, rid: str) -> None:
    """The tick's instance (the tick's id: a repeated fire finds it). Raises FireRefused for
    a refusal, DaprError when agent-runner cannot answer."""
    runner = workflows(client)
    try:
        await runner.status(rid)
        return  # this tick's instance exists already
    except InvokeError:
        pass  # none yet (404), or agent-runner cannot tell: starting it again is refused
    start = StartWorkflow(workflow=target.workflow, input=target.input, instance_id=rid)
    try:
        await runner.start(start)
    except InvokeError as exc:
        if exc.status == 409:
            return  # started meanwhile
        if exc.status in (400, 404, 422):
            raise FireRefused(f"agent-runner refused the workflow: {exc.reason}") from None
        why = f"agent-runner could not start the workflow: {exc.reason}"
        raise DaprError(exc.status, why) from None


async def _count(
    client: DaprClient,
    schedule_id: str,
    rid: str,
    tick: datetime,
    drained: DrainReport | None,
    skipped: str | None = None,
    error: str | None = None,
) -> None:
    """Fire statistics for operators; a lost race only loses a count, never a run."""
    key = stats_key(schedule_id)
    item = await client.get_state(names.STATE_STORE, key)
    stats: dict[str, Any] = dict(item.value) if item else {"fires": 0}
    if error is not None:
        stats.update(
            errors=int(stats.get("errors", 0)) + 1,
            last_error={"tick": tick.isoformat(), "run_id": rid, "reason": error},
        )
    elif skipped is not None:
        stats.update(
            skipped=int(stats.get("skipped", 0)) + 1,
            last_skip={"tick": tick.isoformat(), "reason": skipped},
        )
    else:
        stats.update(
            fires=int(stats.get("fires", 0)) + 1, last_run_id=rid, last_tick=tick.isoformat()
        )
    if drained is not None:
        stats.update(
            last_drain=drained.model_dump(), drained=int(stats.get("drained", 0)) + drained.started
        )
    try:
        await client.save_state(names.STATE_STORE, key, stats, etag=item.etag if item else None)
    except ETagMismatch:
        log.info("fire count race lost", extra={"schedule_id": schedule_id})
