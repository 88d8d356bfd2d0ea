"""The runner on the mesh: `runs.requested` events, create-and-wait invocations, cancels.

Every run is processed once in effect: the durable ledger (PostgreSQL state store, see
``ledger.py`` and ``attempts.py``) names the one process running a run, and a delivery is
acknowledged only once the run is final. Progress goes out on `runs.events` as it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pydantic
from agents import RunConfig
from fastapi import APIRouter, FastAPI, HTTPException, Request

from agentia import names
from agentia.contracts import runner as runner_api
from agentia.contracts.runner import CancelAnswer, LedgerRecord
from agentia.dapr import DaprClient, DaprError, ETagMismatch
from agentia.events import AgentCatalog, Kind, RunRequested, Status
from agentia.service import (
    dapr_client,
    dead_letter_envelope,
    event_data,
    event_traceparent,
    keep_dead_letter,
)
from agentia.telemetry import AGENT_ID, RUN_ID, THREAD_ID, tag_current_span, tracer
from agentia_runner import attempts, ledger, metrics, sdk_tracing
from agentia_runner.attempts import Attempt, Runner, cancel_key, ledger_key
from agentia_runner.effects import RunEffects
from agentia_runner.execute import Outcome, execute
from agentia_runner.mcp_tools import McpServers
from agentia_runner.memory_session import MemorySession
from agentia_runner.models import AgentiaModelProvider, ModelConfigError
from agentia_runner.registry import Registry

log = logging.getLogger(__name__)
router = APIRouter()
CATALOG_EVERY_S = 300.0  # the catalog is published at start and then this often
CANCEL_POLL_S = 1.0  # how stale a run's view of a cancel sent to another replica may be


class ToolServerDown(RuntimeError):
    """A tool server the agent needs could not be reached: the attempt is retried later."""


def _runner(app: FastAPI) -> Runner:
    runner: Runner = app.state.runner
    return runner


def _outcome_fields(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "output": outcome.output,
        "error": outcome.error,
        "last_agent": outcome.last_agent,
        "usage": outcome.usage,
        "models": outcome.models,
    }


async def run_attempt(app: FastAPI, attempt: Attempt) -> dict[str, Any]:
    """Execute one attempt inside a span that names the run (`agentia trace` finds it);
    returns the outcome's fields for the ledger. Raises when the attempt could not finish."""
    req = attempt.req
    attributes: dict[str, str | int] = {
        RUN_ID: req.run_id,
        AGENT_ID: req.agent_id,
        "agentia.attempt": attempt.number,
    }
    if req.thread_id:
        attributes[THREAD_ID] = req.thread_id
    tag_current_span(run_id=req.run_id)
    started = time.monotonic()
    metrics.RUNS_STARTED.labels(req.agent_id).inc()
    metrics.RUNS_ACTIVE.inc()
    try:
        with tracer(__name__).start_as_current_span(f"run {req.agent_id}", attributes=attributes):
            await attempt.sink(
                Kind.RUN_STARTED, {"agent_id": req.agent_id, "attempt": attempt.number}
            )
            outcome = await _execute(app, attempt)
    finally:
        metrics.RUNS_ACTIVE.dec()
    metrics.RUNS_FINISHED.labels(req.agent_id, outcome.status).inc()
    metrics.RUN_SECONDS.labels(req.agent_id).observe(time.monotonic() - started)
    for kind in ("input", "output"):
        used = int((outcome.usage or {}).get(f"{kind}_tokens") or 0)
        if used:
            metrics.MODEL_TOKENS.labels(req.agent_id, kind).inc(used)
    return _outcome_fields(outcome)


async def _execute(app: FastAPI, attempt: Attempt) -> Outcome:
    req, claim = attempt.req, attempt.claim
    registry: Registry = app.state.registry
    try:
        agent = registry.agent(req.agent_id)
    except KeyError:
        return Outcome(Status.ERROR, error=f"unknown agent '{req.agent_id}'")
    if registry.mcp is not None:
        try:
            await registry.mcp.connect(registry.mcp_servers_of(req.agent_id))
        except Exception as exc:  # a tool server down is unavailability: retried, not failed
            raise ToolServerDown(f"tool server unreachable: {type(exc).__name__}: {exc}") from exc
    provider: AgentiaModelProvider = app.state.model_provider
    client = dapr_client(app)

    polled = float("-inf")

    async def cancelled() -> bool:
        # A run taken over by another holder stops here too (its outcome is not recorded).
        nonlocal polled
        if claim.lost or req.run_id in _runner(app).cancels:
            return True
        # A cancel that reached another replica is in the cache store: read at most this often.
        if time.monotonic() - polled < CANCEL_POLL_S:
            return False
        polled = time.monotonic()
        return await client.get_state(names.CACHE_STORE, cancel_key(req.run_id)) is not None

    if req.metadata.get("drained_from") and await cancelled():
        # Queued (on runs.batch) and cancelled while it waited: it never starts.
        return Outcome(Status.INTERRUPTED, error="cancelled before it started")
    run_input: Any = req.input if isinstance(req.input, list) else str(req.input or "")
    session = None
    if req.thread_id:
        session = MemorySession(
            client, req.thread_id, req.run_id, attempt.number, _runner(app).faults
        )
    try:
        outcome = await execute(
            agent,
            run_input,
            RunConfig(
                model_provider=provider,
                workflow_name=f"run {req.run_id}",
                trace_include_sensitive_data=False,  # payloads are in the run's events
            ),
            attempt.sink,
            cancelled,
            max_turns=app.state.settings.max_turns,
            session=session,
            context=RunEffects(req.run_id),
        )
    except ModelConfigError as exc:
        outcome = Outcome(Status.ERROR, error=str(exc))
    if session is not None and not claim.lost:
        await session.settle()
    return outcome


def _ack(done: bool) -> dict[str, str]:
    # RETRY keeps the request on the broker: the sidecar delivers it again after a backoff.
    return {"status": "SUCCESS" if done else "RETRY"}


@router.post("/events/runs-requested")
async def on_run_requested(request: Request) -> dict[str, str]:
    envelope, req = await event_data(request, RunRequested)
    if req is None:  # kept as a dead letter
        return {"status": "SUCCESS"}
    # The CloudEvent carries the trace of whoever asked for the run; its events join it.
    done, _ = await attempts.handle(_runner(request.app), req, event_traceparent(envelope))
    return _ack(done)


@router.post("/events/runs-requested-dead")
async def on_run_dead_lettered(request: Request) -> dict[str, str]:
    """A run request whose deliveries ran out of retries: keep it; if the run is still being
    run it is re-published (it is not dead, it is long), else it ends failed (with its final
    event) so that whoever waits for it is not left waiting forever."""
    envelope = dead_letter_envelope(await request.json())
    await keep_dead_letter(request.app, str(envelope.get("topic", "")), envelope)
    try:
        req = RunRequested.model_validate(envelope.get("data"))
    except pydantic.ValidationError:
        return {"status": "SUCCESS"}
    expired = expired_at(envelope)
    await fail_dead_run(request.app, req, str(envelope.get("id", "")), expired)
    return {"status": "SUCCESS"}


def expired_at(envelope: dict[str, Any]) -> str | None:
    """The CloudEvent's ``expiration`` when it has passed (the sidecar dropped the event
    unread and dead-lettered it), else None."""
    value = envelope.get("expiration")
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return value if when <= datetime.now(UTC) else None


async def fail_dead_run(
    app: FastAPI, req: RunRequested, event_id: str, expired: str | None = None
) -> None:
    runner = _runner(app)
    key = ledger_key(req.run_id)
    item = await runner.client.get_state(names.STATE_STORE, key)
    record = dict(item.value) if item is not None else None
    seen = ledger.verdict(record, runner.me, time.time())
    if seen is ledger.Verdict.DONE:
        return  # a late attempt finished it after all
    live_here = seen is ledger.Verdict.WAIT_LOCAL and req.run_id in runner.attempts
    if seen is ledger.Verdict.WAIT_REMOTE or live_here:
        await runner.client.publish(names.TOPIC_RUNS_REQUESTED, req)
        log.warning("long run re-published after its retries ran out", extra={"run_id": req.run_id})
        return
    base = record or {
        "run_id": req.run_id,
        "agent_id": req.agent_id,
        "thread_id": req.thread_id,
        "owner": req.owner,
        "attempt": 0,
    }
    kept = f"dlq:{names.dead_letter(names.TOPIC_RUNS_REQUESTED)}:{event_id}"
    why = (
        f"dead-lettered: the request expired at {expired} before it was delivered; kept as {kept}"
        if expired
        else f"dead-lettered: every delivery failed; the request is kept as {kept}"
    )
    step = int(base.get("progress") or 0)
    final = ledger.final(base, {"status": Status.ERROR, "error": why}, step)
    try:
        await runner.client.save_over(names.STATE_STORE, key, final, item)
    except ETagMismatch:
        return  # an attempt took it meanwhile: it settles the run itself
    await attempts.publish_final(runner, final, None)
    log.warning("run failed: dead-lettered", extra={"run_id": req.run_id})


@router.post(f"/{runner_api.WAIT}")
async def run_and_wait(req: RunRequested, request: Request) -> LedgerRecord:
    """Create-and-wait: run now (or wait for whoever runs it) and answer with the record;
    a record that is not final yet means the caller should wait for the run's final event."""
    _, record = await attempts.handle(_runner(request.app), req, request.headers.get("traceparent"))
    return LedgerRecord.model_validate(record or {"run_id": req.run_id, "status": Status.PENDING})


@router.post("/internal/runs/{run_id}/cancel")
async def cancel(run_id: str, request: Request) -> CancelAnswer:
    _runner(request.app).told_cancel(run_id, time.monotonic())
    await dapr_client(request.app).save_state(
        names.CACHE_STORE,
        cancel_key(run_id),
        {"cancelled": True},
        metadata={"ttlInSeconds": "86400"},
    )
    return CancelAnswer(run_id=run_id)


@router.get("/internal/runs/{run_id}")
async def get_run(run_id: str, request: Request) -> LedgerRecord:
    item = await dapr_client(request.app).get_state(names.STATE_STORE, ledger_key(run_id))
    if item is None:
        raise HTTPException(404, f"no run '{run_id}'")
    return LedgerRecord.model_validate(item.value)


@router.get(f"/{runner_api.AGENTS}")
async def list_agents(request: Request) -> list[dict[str, Any]]:
    registry: Registry = request.app.state.registry
    return [spec.model_dump(mode="json") for spec in registry.specs.values()]


def catalog(app: FastAPI) -> AgentCatalog:
    registry: Registry = app.state.registry
    agents = [spec.model_dump(mode="json") for spec in registry.specs.values()]
    digest = hashlib.sha256(json.dumps(agents, sort_keys=True).encode()).hexdigest()[:16]
    return AgentCatalog(agents=agents, digest=digest, published_by=_runner(app).me.replica)


async def keep_catalog_published(app: FastAPI) -> None:
    """Publish the agent catalog now (retrying while the broker is away), then now and then:
    a gateway whose queue did not exist yet when one was published gets the next."""
    delay = 1.0
    while True:
        try:
            await dapr_client(app).wait_outbound()
            await dapr_client(app).publish(names.TOPIC_AGENT_CATALOG, catalog(app))
            delay = CATALOG_EVERY_S
        except (DaprError, httpx.HTTPError) as exc:
            log.warning("agent catalog not published yet", extra={"why": str(exc)})
            delay = min(delay * 2, 30.0)
        await asyncio.sleep(delay)


async def _secret_or_none(client: DaprClient, key: str) -> str | None:
    """A secret from the secret store, or None when it is not there."""
    try:
        await client.wait_outbound()
        return await client.find_secret(key)
    except (DaprError, httpx.HTTPError) as exc:
        log.warning("secret store not readable", extra={"key": key, "why": str(exc)})
        return None


async def start(app: FastAPI) -> None:
    """Load and check agent definitions (fail fast), set up models, the ledger's runner and
    the catalog's publishing."""
    settings = app.state.settings
    openai_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if openai_key is None:
        openai_key = await _secret_or_none(dapr_client(app), names.SECRET_OPENAI_API_KEY)
    mcp = McpServers(settings.dapr_http_url, settings.dapr_api_token.get_secret_value())
    app.state.registry = Registry.load(settings.agents_dir, mcp)
    app.state.model_provider = AgentiaModelProvider(
        openai_api_key=openai_key,
        compatible_base_url=settings.model_base_url,
        compatible_api_key=settings.model_api_key.get_secret_value()
        if settings.model_api_key
        else None,
    )
    for spec in app.state.registry.specs.values():
        try:
            app.state.model_provider.check(spec.model)
        except ModelConfigError as exc:
            log.warning(
                "agent cannot run until configured", extra={"agent": spec.name, "why": str(exc)}
            )

    async def run(attempt: Attempt) -> dict[str, Any]:
        return await run_attempt(app, attempt)

    app.state.runner = Runner(
        client=dapr_client(app),
        me=attempts.this_holder(settings.app_port),
        slots=asyncio.Semaphore(settings.max_concurrent_runs),
        faults=app.state.faults,
        run=run,
    )
    sdk_tracing.install()
    app.state.catalog_task = asyncio.create_task(keep_catalog_published(app))
    log.info("agents loaded", extra={"agents": sorted(app.state.registry.specs)})


async def stop(app: FastAPI) -> None:
    app.state.catalog_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app.state.catalog_task
    if app.state.registry.mcp is not None:
        await app.state.registry.mcp.close()
