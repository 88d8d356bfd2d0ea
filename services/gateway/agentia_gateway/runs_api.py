"""Runs endpoints of the Agent Protocol: on a thread and stateless; background, wait, stream;
get, list, cancel, join, join the stream (resumable with ``Last-Event-ID``), delete."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agentia.dapr import DaprError
from agentia.events import Status
from agentia_gateway.budgets import QUEUE_PREFERENCE, prefers_queue
from agentia_gateway.deps import Admission, Flow, Owner, get_flow
from agentia_gateway.messages import input_messages
from agentia_gateway.run_flow import RunFlow
from agentia_gateway.run_record import RunRecord
from agentia_gateway.schemas import ERRORS, ID_PATTERN, Run, RunCreate, RunWaitResponse
from agentia_gateway.streaming import FINAL_KINDS, InOrder, StreamState, sse

router = APIRouter(tags=["Runs"], responses=ERRORS)
ThreadId = Annotated[str, Path(pattern=ID_PATTERN, description="The thread's id.")]
RunId = Annotated[str, Path(pattern=ID_PATTERN, description="The run's id.")]
LastEventId = Annotated[
    str | None, Header(alias="Last-Event-ID", max_length=40, description="Resume after this id.")
]
SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "Server-sent events", "content": {"text/event-stream": {}}}
}
Prefer = Annotated[
    str | None,
    Header(
        max_length=200,
        description="RFC 7240 preferences; `over-budget=queue`: a run over the key's budget "
        "or model limit is queued (202) instead of refused (429).",
    ),
]
QUEUED_DOC = (
    "Queued over the key's budget or model limit (`Prefer: over-budget=queue`): the run "
    "waits on the broker (runs.batch) and a drain starts it once the budget allows"
)
# Events are never lost, only late (handled concurrently, retried on contention): a stream
# holds at a gap this long for the missing one before it goes on without it (InOrder).
GAP_GRACE_S = 15.0
STORE_AWAY_S = 60.0  # how long a stream waits out its stores or sidecar before it ends
KEEPALIVE_S = 10.0


@dataclass(frozen=True)
class Streamed:
    """What a stream of a run's events needs to know of the run."""

    run_id: str
    modes: list[str]
    thread_id: str | None = None
    item_count_before: int = 0  # the thread's items the run found ("values" mode's base)
    input: Any = None
    cancel_on_disconnect: bool = False

    @classmethod
    def of(cls, record: RunRecord, *, joined: bool = False) -> Streamed:
        """A run's stream; a joined one (a client following a run it did not start) never
        cancels the run when the client goes away."""
        return cls(
            run_id=record.run_id,
            modes=record.asked.stream_mode or ["values"],
            thread_id=record.thread_id,
            item_count_before=record.item_count_before,
            input=record.asked.input,
            cancel_on_disconnect=not joined and record.on_disconnect == "cancel",
        )


async def _owned(request: Request, run_id: str, thread_id: str | None) -> RunRecord:
    record = await get_flow(request).store.get(run_id)
    if record is None or (thread_id is not None and record.thread_id != thread_id):
        where = f" on thread '{thread_id}'" if thread_id else ""
        raise HTTPException(404, f"no run '{run_id}'{where}")
    return record


async def _wait_response(flow: RunFlow, record: RunRecord) -> RunWaitResponse:
    messages = await flow.values(record)
    return RunWaitResponse(
        run=Run.model_validate(record.public()),
        values={"messages": messages},
        messages=messages,
        output=record.output,
    )


def parse_last_id(raw: str | None) -> int:
    if raw is None or not raw.strip():
        return -1
    if not raw.strip().isdigit():
        raise HTTPException(422, "Last-Event-ID: an id this stream sent (digits)")
    return int(raw)


async def run_frames(
    request: Request,
    run: Streamed,
    after: int,
    fresh: bool,
    unrecorded_wait_s: float = 0.0,
) -> AsyncIterator[str]:
    """The run's events as SSE, from its log, until its final event (any replica can serve).
    A run with no record (a workflow's streamed message) is waited for up to
    ``unrecorded_wait_s`` before its first event."""
    flow = get_flow(request)
    run_id, modes = run.run_id, run.modes
    base: list[dict[str, Any]] = []
    if "values" in modes:
        # The thread as the run found it, then the run's own input (as /runs/wait and the
        # thread's state show it once the run has written it).
        if run.thread_id:
            base = await flow.thread_messages(run.thread_id, run.item_count_before)
        if run.input is not None:
            base += input_messages(run.input)
    state = StreamState(run_id, modes, base)
    if fresh:
        yield sse("metadata", {"run_id": run_id, "thread_id": run.thread_id})
    order, last_io, away_since = InOrder(GAP_GRACE_S), time.monotonic(), 0.0
    pause = flow.settings.stream_poll_s
    finished = False
    patience = time.monotonic() + unrecorded_wait_s
    settled_seen = 0.0  # when this stream first found the run settled with its log empty
    try:
        with flow.signals.watching(run_id):
            while not finished:
                woken = flow.signals.armed(run_id)  # before the read: no append is missed
                try:
                    events = await flow.store.read_log(run_id, order.sent)
                    unseen = order.sent < 0 and not events
                    current = await flow.store.get(run_id) if unseen else None
                except (DaprError, httpx.HTTPError) as exc:
                    # The stores or this replica's sidecar away (a restart): the stream
                    # waits, with keepalives, rather than break under the client.
                    away_since = away_since or time.monotonic()
                    if time.monotonic() - away_since > STORE_AWAY_S:
                        yield sse("error", {"error": "Unavailable", "message": str(exc)[:200]})
                        break
                    yield ": keepalive\n\n"
                    await flow.signals.wait(woken, pause * 4)
                    continue
                away_since = 0.0
                for event in order.take(events):
                    frames = state.frames(event)
                    if int(event["seq"]) > after:
                        for frame in frames:
                            yield frame
                        last_io = time.monotonic()
                    if event["kind"] in FINAL_KINDS:
                        finished = True
                        break
                if finished:
                    break
                if order.sent < 0 and not events:  # nothing yet: is there a run, is its log gone?
                    if current is None and time.monotonic() < patience:
                        pass  # not started yet: its first event is on its way
                    elif current is None:
                        break  # no run and no log: nothing will come
                    elif current.final:
                        # A run is settled just before its final event is appended, and its
                        # other events may still be on redelivery: only a log still empty a
                        # grace later is one that expired.
                        settled_seen = settled_seen or time.monotonic()
                        if time.monotonic() - settled_seen > GAP_GRACE_S:
                            break
                if time.monotonic() - last_io > KEEPALIVE_S:
                    yield ": keepalive\n\n"
                    last_io = time.monotonic()
                # Woken by this replica's append, else the log is read again after pause.
                await flow.signals.wait(woken, pause)
    finally:
        if not finished and run.cancel_on_disconnect:
            # The client left a stream it asked to cancel on disconnect.
            await asyncio.shield(_cancel_quietly(flow, run_id))


async def _cancel_quietly(flow: RunFlow, run_id: str) -> None:
    try:
        await flow.cancel(run_id)
    except Exception:  # the run may be gone or the mesh busy: the stream is closed anyway
        return


def _stream(request: Request, run: Streamed, after: int, fresh: bool) -> StreamingResponse:
    return StreamingResponse(
        run_frames(request, run, after, fresh),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
            "Content-Location": f"/runs/{run.run_id}",
        },
    )


# -- on a thread ---------------------------------------------------------------------------------


@router.post("/threads/{thread_id}/runs", response_model=Run)
async def create_run(
    thread_id: ThreadId, body: RunCreate, flow: Flow, owner: Owner, _: Admission
) -> Run:
    record = await flow.create(body, thread_id, owner)
    if record.admitted:
        await flow.start(record)
    return Run.model_validate(record.public())


@router.post("/threads/{thread_id}/runs/wait", response_model=RunWaitResponse)
async def create_run_wait(
    thread_id: ThreadId, body: RunCreate, flow: Flow, owner: Owner, _: Admission
) -> RunWaitResponse:
    record = await flow.run_and_wait(await flow.create(body, thread_id, owner))
    return await _wait_response(flow, record)


@router.post("/threads/{thread_id}/runs/stream", responses=SSE_DOC)
async def create_run_stream(
    thread_id: ThreadId,
    body: RunCreate,
    request: Request,
    flow: Flow,
    owner: Owner,
    _: Admission,
) -> StreamingResponse:
    record = await flow.create(body, thread_id, owner)
    if record.admitted:
        await flow.start(record)
    return _stream(request, Streamed.of(record), -1, True)


@router.get("/threads/{thread_id}/runs", response_model=list[Run])
async def list_runs(
    thread_id: ThreadId,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    status: Annotated[Status | None, Query()] = None,
) -> list[Run]:
    flow = get_flow(request)
    if await flow.thread(thread_id) is None:
        raise HTTPException(404, f"no thread '{thread_id}'")
    ids = list(reversed(await flow.store.index(thread_id)))  # newest first
    runs = await flow.store.get_many(ids)
    if status is not None:
        runs = [r for r in runs if r.status == status]
    return [Run.model_validate(r.public()) for r in runs[offset : offset + limit]]


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=Run)
async def get_run(thread_id: ThreadId, run_id: RunId, request: Request) -> Run:
    return Run.model_validate((await _owned(request, run_id, thread_id)).public())


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204, response_class=Response)
async def delete_run(thread_id: ThreadId, run_id: RunId, request: Request) -> Response:
    flow = get_flow(request)
    record = await _owned(request, run_id, thread_id)
    if not record.final:
        raise HTTPException(409, f"run '{run_id}' is {record.status}: cancel it first")
    await flow.store.index_remove(thread_id, run_id)
    await flow.store.delete(run_id)
    return Response(status_code=204)


async def _cancel(
    request: Request, run_id: str, thread_id: str | None, wait: bool, action: str
) -> Run:
    flow = get_flow(request)
    await _owned(request, run_id, thread_id)
    record = await flow.cancel(run_id, rollback=action == "rollback")
    if wait:
        record = await flow.wait_final(run_id)
    return Run.model_validate(record.public())


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", response_model=Run)
async def cancel_run(
    thread_id: ThreadId,
    run_id: RunId,
    request: Request,
    wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Run:
    return await _cancel(request, run_id, thread_id, wait, action)


@router.get("/threads/{thread_id}/runs/{run_id}/wait", response_model=RunWaitResponse)
@router.get("/threads/{thread_id}/runs/{run_id}/join", response_model=RunWaitResponse)
async def join_run(thread_id: ThreadId, run_id: RunId, request: Request) -> RunWaitResponse:
    flow = get_flow(request)
    await _owned(request, run_id, thread_id)
    return await _wait_response(flow, await flow.wait_final(run_id))


@router.get("/threads/{thread_id}/runs/{run_id}/stream", responses=SSE_DOC)
async def join_run_stream(
    thread_id: ThreadId,
    run_id: RunId,
    request: Request,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    record = await _owned(request, run_id, thread_id)
    after = parse_last_id(last_event_id)
    return _stream(request, Streamed.of(record, joined=True), after, after < 0)


# -- stateless -------------------------------------------------------------------------------------


@router.post(
    "/runs",
    response_model=Run,
    tags=["Stateless Runs"],
    responses={202: {"model": Run, "description": QUEUED_DOC}},
)
async def create_stateless_run(
    body: RunCreate,
    response: Response,
    flow: Flow,
    owner: Owner,
    over: Admission,
    prefer: Prefer = None,
) -> Run:
    queue = prefers_queue(prefer)
    record = await flow.create(body, None, owner, over if queue else None, may_queue=queue)
    if record.queued:
        await flow.enqueue(record)
        response.status_code = 202
        response.headers["Preference-Applied"] = QUEUE_PREFERENCE
    else:
        await flow.start(record)
    return Run.model_validate(record.public())


@router.post("/runs/wait", response_model=RunWaitResponse, tags=["Stateless Runs"])
async def create_stateless_run_wait(
    body: RunCreate, flow: Flow, owner: Owner, _: Admission
) -> RunWaitResponse:
    record = await flow.run_and_wait(await flow.create(body, None, owner))
    return await _wait_response(flow, record)


@router.post("/runs/stream", responses=SSE_DOC, tags=["Stateless Runs"])
async def create_stateless_run_stream(
    body: RunCreate, request: Request, flow: Flow, owner: Owner, _: Admission
) -> StreamingResponse:
    record = await flow.create(body, None, owner)
    await flow.start(record)
    return _stream(request, Streamed.of(record), -1, True)


@router.get("/runs/{run_id}", response_model=Run, tags=["Stateless Runs"])
async def get_stateless_run(run_id: RunId, request: Request) -> Run:
    return Run.model_validate((await _owned(request, run_id, None)).public())


@router.post("/runs/{run_id}/cancel", response_model=Run, tags=["Stateless Runs"])
async def cancel_stateless_run(
    run_id: RunId,
    request: Request,
    wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Run:
    return await _cancel(request, run_id, None, wait, action)


@router.get("/runs/{run_id}/wait", response_model=RunWaitResponse, tags=["Stateless Runs"])
async def join_stateless_run(run_id: RunId, request: Request) -> RunWaitResponse:
    flow = get_flow(request)
    await _owned(request, run_id, None)
    return await _wait_response(flow, await flow.wait_final(run_id))


@router.get("/runs/{run_id}/stream", responses=SSE_DOC, tags=["Stateless Runs"])
async def join_stateless_run_stream(
    run_id: RunId, request: Request, last_event_id: LastEventId = None
) -> StreamingResponse:
    record = await _owned(request, run_id, None)
    after = parse_last_id(last_event_id)
    return _stream(request, Streamed.of(record, joined=True), after, after < 0)


class CancelMany(BaseModel):
    """Runs to cancel: listed, or all of a thread's, or all with a status."""

    model_config = ConfigDict(extra="forbid")
    thread_id: str | None = Field(default=None, pattern=ID_PATTERN, description="A thread.")
    run_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] | None = Field(
        default=None, max_length=1000, description="These runs."
    )
    status: Literal["pending", "running", "all"] | None = Field(
        default=None, description="Not supported without thread_id or run_ids."
    )


@router.post("/runs/cancel", status_code=204, response_class=Response, tags=["Stateless Runs"])
async def cancel_many(
    body: CancelMany,
    request: Request,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:
    """Cancel several runs: ``run_ids`` (on ``thread_id`` if given), or every run of
    ``thread_id`` that is not final."""
    flow = get_flow(request)
    if body.run_ids:
        ids = list(body.run_ids)
    elif body.thread_id:
        ids = list(await flow.store.index(body.thread_id))
    else:
        raise HTTPException(422, "run_ids or thread_id: which runs to cancel")
    for record in await flow.store.get_many(ids):
        if body.thread_id is not None and record.thread_id != body.thread_id:
            continue
        if not record.final:
            await flow.cancel(record.run_id, rollback=action == "rollback")
    return Response(status_code=204)


@router.post("/runs/batch", response_model=list[Run], tags=["Stateless Runs"])
async def create_batch(body: list[RunCreate], flow: Flow, owner: Owner, _: Admission) -> list[Run]:
    """Several stateless background runs at once (each as ``POST /runs``)."""
    if not 1 <= len(body) <= 100:
        raise HTTPException(422, "body: between 1 and 100 runs")
    created = []
    for one in body:
        record = await flow.create(one, None, owner)
        await flow.start(record)
        created.append(Run.model_validate(record.public()))
    return created
