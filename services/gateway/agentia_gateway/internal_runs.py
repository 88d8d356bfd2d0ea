"""Runs other services ask the gateway for (the scheduler's cron fires), through Dapr
invocation: recorded, laned and reconciled as a client's runs are, so they are readable
through the public API (``GET /runs/{id}``) and wait their turn on a busy thread.

``POST /internal/runs/check`` answers whether such a run could be created, without
creating it: a schedule is checked when it is made, not at its first fire.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response

from agentia.contracts import gateway as gateway_api
from agentia.contracts.gateway import ScheduledRun
from agentia_gateway.deps import Auth, Flow
from agentia_gateway.schemas import RunCreate
from agentia_gateway.security import Authenticator, Principal

router = APIRouter(include_in_schema=False)


def _body(run: ScheduledRun) -> RunCreate:
    # On a busy thread a scheduled run waits its turn; its thread must exist (a schedule's
    # thread deleted since is a refusal the schedule shows as its last error).
    return RunCreate(
        agent_id=run.agent_id,
        input=run.input,
        metadata=run.metadata,
        multitask_strategy="enqueue",
        if_not_exists="reject",
    )


def _owner(run: ScheduledRun, auth: Authenticator) -> Principal | None:
    if run.owner is None:
        return None
    principal = auth.principal(run.owner)
    if principal is None:
        raise HTTPException(404, f"owner: no key '{run.owner}' (revoked?)")
    return principal


@router.post(f"/{gateway_api.RUNS}")
async def create_scheduled(run: ScheduledRun, flow: Flow, auth: Auth) -> dict[str, Any]:
    existing = await flow.store.get(run.run_id)
    if existing is not None:
        return existing.public()  # the same tick fired again
    record = await flow.create(_body(run), run.thread_id, _owner(run, auth), run_id=run.run_id)
    if record.admitted:
        await flow.start(record)
    return record.public()


@router.post(f"/{gateway_api.RUNS_CHECK}", status_code=204, response_class=Response)
async def check(run: ScheduledRun, flow: Flow) -> Response:
    """204 when a run like ``run`` could be created now; else the 404 or 422 creating it
    would answer (unknown agent or thread, input that is not valid)."""
    await flow.check(_body(run), run.thread_id)
    return Response(status_code=204)
