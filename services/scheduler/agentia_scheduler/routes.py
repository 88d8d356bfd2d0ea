"""The scheduler's routes: schedule CRUD and drains (internal, through Dapr invocation; their
paths and models are ``agentia.contracts.scheduler``) and the job callback the sidecar makes
when a schedule fires.

Timing lives in Dapr's Jobs API (job name = schedule id). The definitions are also kept
in the state store, with an index, because the Jobs API has no listing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request

from agentia import names
from agentia.contracts import scheduler as api
from agentia.contracts.scheduler import (
    DrainReport,
    DrainRequest,
    Schedule,
    ScheduleDeleted,
    ScheduleError,
    ScheduleQuery,
    ScheduleRequest,
    ScheduleView,
)
from agentia.dapr import DaprClient, DaprError, ETagMismatch
from agentia.service import dapr_client
from agentia_scheduler import metrics, targets
from agentia_scheduler.budget_check import OwnerGone
from agentia_scheduler.drain import drain_once
from agentia_scheduler.firing import DrainBusy, Drainer, fire, stats_key
from agentia_scheduler.jobs import JobsClient
from agentia_scheduler.schedules import build, dapr_job, next_fire

log = logging.getLogger(__name__)
router = APIRouter()
INDEX_KEY = "schedule-index"


def schedule_key(schedule_id: str) -> str:
    return f"schedule:{schedule_id}"


def _jobs(request: Request) -> JobsClient:
    jobs: JobsClient = request.app.state.jobs
    return jobs


async def _update_index(client: DaprClient, schedule_id: str, add: bool) -> None:
    for _ in range(20):  # optimistic concurrency: re-read and retry on a lost race
        item = await client.get_state(names.STATE_STORE, INDEX_KEY)
        ids: list[str] = list(item.value.get("ids", [])) if item else []
        if (schedule_id in ids) == add:
            return
        ids = [*ids, schedule_id] if add else [i for i in ids if i != schedule_id]
        try:
            await client.save_over(names.STATE_STORE, INDEX_KEY, {"ids": ids}, item)
            return
        except ETagMismatch:
            continue
    raise HTTPException(503, "schedule index busy; try again", headers={"Retry-After": "1"})


def view(schedule: Schedule, stats: dict[str, Any] | None, now: datetime) -> ScheduleView:
    """The schedule as it is answered: with its next fire and how its fires went (served
    with ``exclude_unset``: ``last_drain`` only once it drained)."""
    stats = stats or {}
    return ScheduleView.model_validate(
        {
            **schedule.model_dump(),
            "next_run": next_fire(schedule, now),
            "fires": int(stats.get("fires", 0)),
            "last_run_id": stats.get("last_run_id"),
            "skipped": int(stats.get("skipped", 0)),
            "last_skip": stats.get("last_skip"),
            "errors": int(stats.get("errors", 0)),
            "last_error": stats.get("last_error"),
            **({"last_drain": stats["last_drain"]} if "last_drain" in stats else {}),
        }
    )


async def _load(client: DaprClient, schedule_id: str) -> Schedule:
    item = await client.get_state(names.STATE_STORE, schedule_key(schedule_id))
    if item is None:
        raise HTTPException(404, f"no schedule '{schedule_id}'")
    return Schedule.model_validate(item.value)


@router.post(f"/{api.SCHEDULES}", status_code=201, response_model_exclude_unset=True)
async def create(req: ScheduleRequest, request: Request) -> ScheduleView:
    client = dapr_client(request.app)
    now = datetime.now(UTC)
    try:
        schedule = build(req, now)
        await targets.check(client, schedule.target)
    except ScheduleError as exc:
        raise HTTPException(422, str(exc)) from None
    key = schedule_key(schedule.schedule_id)
    if await client.get_state(names.STATE_STORE, key) is not None:
        if not req.replace:
            raise HTTPException(409, f"schedule '{schedule.schedule_id}' exists")
        await _remove(request, schedule.schedule_id)  # the new one is checked: replace it
    # The definition first: a job that fires finds it; a failed job leaves no orphan fire.
    await client.save_state(names.STATE_STORE, key, schedule.model_dump(mode="json"))
    await _update_index(client, schedule.schedule_id, add=True)
    try:
        await _jobs(request).schedule(schedule.schedule_id, dapr_job(schedule))
    except DaprError as exc:
        await client.delete_state(names.STATE_STORE, key)
        await _update_index(client, schedule.schedule_id, add=False)
        if exc.status < 500:
            raise HTTPException(422, f"the Jobs API refused the schedule: {exc.reason}") from None
        raise
    log.info("schedule created", extra={"schedule_id": schedule.schedule_id})
    return view(schedule, None, now)


@router.get(f"/{api.SCHEDULES}", response_model_exclude_unset=True)
async def list_schedules(
    request: Request, query: Annotated[ScheduleQuery, Query()]
) -> list[ScheduleView]:
    client = dapr_client(request.app)
    index = await client.get_state(names.STATE_STORE, INDEX_KEY)
    ids: list[str] = list(index.value.get("ids", [])) if index else []
    items = await client.get_bulk_state(names.STATE_STORE, [schedule_key(i) for i in ids])
    stats = await client.get_bulk_state(names.STATE_STORE, [stats_key(i) for i in ids])
    now = datetime.now(UTC)
    found = []
    for schedule_id in ids:
        item = items.get(schedule_key(schedule_id))
        if item is None:
            continue
        schedule = Schedule.model_validate(item.value)
        target = schedule.target
        if query.agent_id and getattr(target, "agent_id", None) != query.agent_id:
            continue
        if query.thread_id and getattr(target, "thread_id", None) != query.thread_id:
            continue
        stat = stats.get(stats_key(schedule_id))
        found.append(view(schedule, stat.value if stat else None, now))
    return found[query.offset : query.offset + query.limit]


@router.get(f"/{api.SCHEDULES}/{{schedule_id}}", response_model_exclude_unset=True)
async def get_schedule(schedule_id: str, request: Request) -> ScheduleView:
    client = dapr_client(request.app)
    schedule = await _load(client, schedule_id)
    stats = await client.get_state(names.STATE_STORE, stats_key(schedule_id))
    body = view(schedule, stats.value if stats else None, datetime.now(UTC))
    job = await _jobs(request).get(schedule_id)
    body.job = {k: v for k, v in (job or {}).items() if k != "data"} or None
    return body


@router.delete(f"/{api.SCHEDULES}/{{schedule_id}}")
async def delete_schedule(schedule_id: str, request: Request) -> ScheduleDeleted:
    client = dapr_client(request.app)
    await _load(client, schedule_id)
    await _remove(request, schedule_id)
    return ScheduleDeleted(schedule_id=schedule_id)


async def _remove(request: Request, schedule_id: str) -> None:
    client = dapr_client(request.app)
    await _jobs(request).delete(schedule_id)
    await client.delete_state(names.STATE_STORE, schedule_key(schedule_id))
    await _update_index(client, schedule_id, add=False)


@router.post("/job/{name}")
async def on_job(name: str, request: Request) -> dict[str, str]:
    """The sidecar's callback when job ``name`` fires; the body is the schedule."""
    body = await request.json()
    try:
        schedule = Schedule.model_validate(body)
    except pydantic.ValidationError:
        # Not ours to run (or an old shape): keep it, and answer 200 so it is not retried.
        log.warning("job with an unreadable schedule", extra={"job": name})
        return {"status": "ignored"}
    if await dapr_client(request.app).get_state(names.STATE_STORE, schedule_key(name)) is None:
        log.info("fire of a deleted schedule ignored", extra={"job": name})
        return {"status": "ignored"}
    try:
        rid = await fire(dapr_client(request.app), schedule, drainer=drainer(request.app))
    except OwnerGone:
        # A revoked key's schedules stop for good, rather than asking at every tick.
        await _remove(request, name)
        log.info("schedule of a revoked key deleted", extra={"schedule_id": name})
        return {"status": "deleted: its owner key was revoked"}
    return {"status": "fired", "run_id": rid}


def drainer(app: FastAPI) -> Drainer:
    """Drains through this service's own sidecar (its gRPC API streams the topic)."""
    settings = app.state.settings
    token = settings.dapr_api_token.get_secret_value()

    async def run(req: DrainRequest) -> DrainReport:
        lock: asyncio.Lock = app.state.draining
        if lock.locked():
            raise DrainBusy()
        async with lock:
            report = await drain_once(
                dapr_client(app), settings.dapr_grpc_address, token, req, settings.broker_queue_type
            )
        metrics.DRAINS.labels(report.stopped.split(":")[0]).inc()
        metrics.DRAINED.labels(report.topic).inc(report.started)
        if report.stopped != "idle":
            # Events may be left held by the sidecar; the watchdog looks (runtime/watchdog.py).
            app.state.info["drains_cut_short"] += 1
        return report

    return run


@router.post(f"/{api.DRAINS}")
async def drain_now(req: DrainRequest, request: Request) -> DrainReport:
    """Drain a topic now (what a ``drain`` schedule does at each fire); the report says how
    many runs were started and why the drain stopped."""
    try:
        report = await drainer(request.app)(req)
    except DrainBusy:
        raise HTTPException(409, "a drain is running; try when it ends") from None
    if report.stopped.startswith("error"):
        raise HTTPException(503, f"drain stopped: {report.stopped}", headers={"Retry-After": "5"})
    return report
