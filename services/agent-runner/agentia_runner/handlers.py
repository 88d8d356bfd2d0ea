"""The runner on the mesh: `runs.requested` events and create-and-wait invocations.

Every run is processed once in effect: a durable ledger entry per run id (PostgreSQL state
store, optimistic concurrency) makes a duplicate delivery return the recorded outcome
instead of running the agent again. Progress goes out on `runs.events` as it happens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pydantic
from agents import RunConfig
from fastapi import APIRouter, FastAPI, HTTPException, Request

from agentia import names
from agentia.dapr import DaprClient, DaprError, ETagMismatch
from agentia.events import RunEvent, RunRequested
from agentia.service import dapr_client, keep_dead_letter
from agentia.telemetry import AGENT_ID, RUN_ID, THREAD_ID, tag_current_span, tracer
from agentia_runner import metrics, sdk_tracing
from agentia_runner.execute import Outcome, execute
from agentia_runner.mcp_tools import McpServers
from agentia_runner.memory_session import MemorySession
from agentia_runner.models import AgentiaModelProvider, ModelConfigError
from agentia_runner.registry import Registry

log = logging.getLogger(__name__)
router = APIRouter()
FINAL = {"success", "error", "interrupted"}
SEQ_PER_ATTEMPT = 100_000  # a retried run's events sort after the earlier attempt's


def ledger_key(run_id: str) -> str:
    return f"run:{run_id}"


def cancel_key(run_id: str) -> str:
    return f"run-cancel:{run_id}"


class EventSink:
    """Publishes a run's events with increasing sequence numbers, in the run's trace."""

    def __init__(
        self, client: DaprClient, run_id: str, attempt: int, traceparent: str | None = None
    ) -> None:
        self.client, self.run_id, self.seq = client, run_id, attempt * SEQ_PER_ATTEMPT
        self.headers = {"traceparent": traceparent} if traceparent else None

    async def __call__(
        self, kind: str, data: dict[str, Any], status: str = "running", event_id: str | None = None
    ) -> None:
        fields = {
            "run_id": self.run_id,
            "kind": kind,
            "status": status,
            "seq": self.seq,
            "data": data,
        }
        if event_id:
            fields["event_id"] = event_id
        event = RunEvent.model_validate(fields)
        self.seq += 1
        await self.client.publish(names.TOPIC_RUNS_EVENTS, event, headers=self.headers)


async def run_once(
    app: FastAPI, req: RunRequested, traceparent: str | None = None
) -> dict[str, Any]:
    """Run ``req`` unless its run id already finished; return the run's ledger record."""
    client = dapr_client(app)
    key = ledger_key(req.run_id)
    item = await client.get_state(names.STATE_STORE, key)
    if item is not None and item.value.get("status") in FINAL:
        log.info("duplicate run request ignored", extra={"run_id": req.run_id})
        if not item.value.get("final_published", True):
            await _publish_final(client, key, dict(item.value), traceparent)
        return dict(item.value)
    attempt = int(item.value.get("attempt", 0)) + 1 if item is not None else 1
    record: dict[str, Any] = {
        "run_id": req.run_id,
        "agent_id": req.agent_id,
        "thread_id": req.thread_id,
        "owner": req.owner,
        "status": "running",
        "attempt": attempt,
    }
    try:
        await client.save_state(
            names.STATE_STORE,
            key,
            record,
            etag=item.etag if item else None,
            first_write=item is None,
        )
    except ETagMismatch:
        # Another delivery of the same run id got there first and is running it.
        return {**record, "status": "running", "note": "already being run"}
    async with app.state.run_slots:
        outcome, last_seq = await _traced_run(app, req, attempt, traceparent)
    kind = {"success": "run.completed", "error": "run.failed", "interrupted": "run.cancelled"}
    record.update(
        status=outcome.status,
        output=outcome.output,
        error=outcome.error,
        last_agent=outcome.last_agent,
        usage=outcome.usage,
        models=outcome.models,
        # Recorded before it is published: a crash in between re-publishes the same event
        # (same id, so consumers see it once) instead of running the agent again.
        final_event={"kind": kind[outcome.status], "seq": last_seq},
        final_published=False,
    )
    await client.save_state(names.STATE_STORE, key, record)
    await _publish_final(client, key, record, traceparent)
    return record


async def _traced_run(
    app: FastAPI, req: RunRequested, attempt: int, traceparent: str | None
) -> tuple[Outcome, int]:
    """Execute one attempt inside a span that names the run (`agentia trace` finds it);
    returns the outcome and the next event sequence number."""
    client = dapr_client(app)
    attributes: dict[str, str | int] = {
        RUN_ID: req.run_id,
        AGENT_ID: req.agent_id,
        "agentia.attempt": attempt,
    }
    if req.thread_id:
        attributes[THREAD_ID] = req.thread_id
    tag_current_span(run_id=req.run_id)
    started = time.monotonic()
    metrics.RUNS_STARTED.labels(req.agent_id).inc()
    metrics.RUNS_ACTIVE.inc()
    try:
        with tracer(__name__).start_as_current_span(f"run {req.agent_id}", attributes=attributes):
            sink = EventSink(client, req.run_id, attempt, traceparent)
            await sink("run.started", {"agent_id": req.agent_id, "attempt": attempt})
            outcome = await _execute(app, req, sink)
    finally:
        metrics.RUNS_ACTIVE.dec()
    metrics.RUNS_FINISHED.labels(req.agent_id, outcome.status).inc()
    metrics.RUN_SECONDS.labels(req.agent_id).observe(time.monotonic() - started)
    for kind in ("input", "output"):
        used = int((outcome.usage or {}).get(f"{kind}_tokens") or 0)
        if used:
            metrics.MODEL_TOKENS.labels(req.agent_id, kind).inc(used)
    return outcome, sink.seq


async def _publish_final(
    client: DaprClient, key: str, record: dict[str, Any], traceparent: str | None
) -> None:
    """Publish the run's final event (id derived from the run id), then mark it published."""
    final = record["final_event"]
    sink = EventSink(client, record["run_id"], 0, traceparent)
    sink.seq = int(final["seq"])
    # The owner rides on the final event: whoever counts usage (the gateway) needs no record
    # of its own for runs it did not start (a schedule's, a drain's); ``models`` splits the
    # usage by model, for per-model counts, prices and limits.
    keys = ("output", "error", "last_agent", "usage", "models", "owner")
    data = {k: record.get(k) for k in keys}
    await sink(final["kind"], data, status=record["status"], event_id=f"{record['run_id']}.final")
    record["final_published"] = True
    await client.save_state(names.STATE_STORE, key, record)


async def _execute(app: FastAPI, req: RunRequested, sink: EventSink) -> Outcome:
    registry: Registry = app.state.registry
    try:
        agent = registry.agent(req.agent_id)
    except KeyError:
        return Outcome("error", error=f"unknown agent '{req.agent_id}'")
    if registry.mcp is not None:
        try:
            await registry.mcp.connect(registry.mcp_servers_of(req.agent_id))
        except Exception as exc:  # any failure to reach a tool server fails the run, with why
            return Outcome("error", error=f"tool server unreachable: {type(exc).__name__}: {exc}")
    provider: AgentiaModelProvider = app.state.model_provider
    client = dapr_client(app)

    async def cancelled() -> bool:
        return await client.get_state(names.CACHE_STORE, cancel_key(req.run_id)) is not None

    if req.metadata.get("drained_from") and await cancelled():
        # Queued (on runs.batch) and cancelled while it waited: it never starts.
        return Outcome("interrupted", error="cancelled before it started")
    run_input: Any = req.input if isinstance(req.input, list) else str(req.input or "")
    try:
        return await execute(
            agent,
            run_input,
            RunConfig(
                model_provider=provider,
                workflow_name=f"run {req.run_id}",
                trace_include_sensitive_data=False,  # payloads are in the run's events
            ),
            sink,
            cancelled,
            max_turns=app.state.settings.max_turns,
            session=MemorySession(client, req.thread_id) if req.thread_id else None,
        )
    except ModelConfigError as exc:
        return Outcome("error", error=str(exc))


@router.post("/events/runs-requested")
async def on_run_requested(request: Request) -> dict[str, str]:
    envelope = await request.json()
    try:
        req = RunRequested.model_validate(envelope.get("data"))
    except pydantic.ValidationError:
        await keep_dead_letter(request.app, str(envelope.get("topic", "")), envelope)
        return {"status": "SUCCESS"}
    # The CloudEvent carries the trace of whoever asked for the run; its events join it.
    await run_once(request.app, req, envelope.get("traceparent"))
    return {"status": "SUCCESS"}


@router.post("/events/runs-requested-dead")
async def on_run_dead_lettered(request: Request) -> dict[str, str]:
    """A run request every delivery of which failed: keep it, and end the run as failed (with
    its final event) so that whoever waits for it, a client's stream or a queued run behind
    it on the thread, is not left waiting forever."""
    envelope = await request.json()
    await keep_dead_letter(request.app, str(envelope.get("topic", "")), envelope)
    try:
        req = RunRequested.model_validate(envelope.get("data"))
    except pydantic.ValidationError:
        return {"status": "SUCCESS"}
    await fail_dead_run(request.app, req, str(envelope.get("id", "")))
    return {"status": "SUCCESS"}


async def fail_dead_run(app: FastAPI, req: RunRequested, event_id: str) -> None:
    client = dapr_client(app)
    key = ledger_key(req.run_id)
    item = await client.get_state(names.STATE_STORE, key)
    if item is not None and item.value.get("status") in FINAL:
        return  # a late attempt finished it after all
    attempt = int(item.value.get("attempt", 0)) + 1 if item is not None else 1
    record: dict[str, Any] = {
        "run_id": req.run_id,
        "agent_id": req.agent_id,
        "thread_id": req.thread_id,
        "status": "error",
        "attempt": attempt,
        "error": f"dead-lettered: every delivery failed; the request is kept as "
        f"dlq:{names.TOPIC_RUNS_REQUESTED}:{event_id}",
        "final_event": {"kind": "run.failed", "seq": attempt * SEQ_PER_ATTEMPT},
        "final_published": False,
    }
    try:
        await client.save_state(
            names.STATE_STORE,
            key,
            record,
            etag=item.etag if item else None,
            first_write=item is None,
        )
    except ETagMismatch:
        return  # an attempt is still writing: it settles the run itself
    await _publish_final(client, key, record, None)
    log.warning("run failed: dead-lettered", extra={"run_id": req.run_id})


@router.post("/internal/runs/wait")
async def run_and_wait(req: RunRequested, request: Request) -> dict[str, Any]:
    """Create-and-wait: run now (or return the recorded outcome) and answer with it."""
    return await run_once(request.app, req, request.headers.get("traceparent"))


@router.post("/internal/runs/{run_id}/cancel")
async def cancel(run_id: str, request: Request) -> dict[str, str]:
    await dapr_client(request.app).save_state(
        names.CACHE_STORE,
        cancel_key(run_id),
        {"cancelled": True},
        metadata={"ttlInSeconds": "86400"},
    )
    return {"run_id": run_id, "status": "cancelling"}


@router.get("/internal/runs/{run_id}")
async def get_run(run_id: str, request: Request) -> dict[str, Any]:
    item = await dapr_client(request.app).get_state(names.STATE_STORE, ledger_key(run_id))
    if item is None:
        raise HTTPException(404, f"no run '{run_id}'")
    return dict(item.value)


@router.get("/internal/agents")
async def list_agents(request: Request) -> list[dict[str, Any]]:
    registry: Registry = request.app.state.registry
    return [spec.model_dump(mode="json") for spec in registry.specs.values()]


async def _secret_or_none(client: DaprClient, key: str) -> str | None:
    """A secret from the secret store, or None when it is not there."""
    try:
        await client.wait_outbound()
        return await client.find_secret(key)
    except (DaprError, httpx.HTTPError) as exc:
        log.warning("secret store not readable", extra={"key": key, "why": str(exc)})
        return None


async def start(app: FastAPI) -> None:
    """Load and check agent definitions (fail fast), set up models and run slots."""
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
    app.state.run_slots = asyncio.Semaphore(settings.max_concurrent_runs)
    sdk_tracing.install()
    log.info("agents loaded", extra={"agents": sorted(app.state.registry.specs)})


async def stop(app: FastAPI) -> None:
    if app.state.registry.mcp is not None:
        await app.state.registry.mcp.close()
