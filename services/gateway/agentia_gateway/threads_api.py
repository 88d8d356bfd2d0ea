"""Threads endpoints of the Agent Protocol. Threads live in the memory service (invoked
through Dapr); their status comes from the thread's run lane."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response

from agentia.contracts import memory as memory_api
from agentia.events import Status
from agentia_gateway import upstream
from agentia_gateway.deps import Flow
from agentia_gateway.messages import to_messages
from agentia_gateway.run_flow import RunFlow
from agentia_gateway.schemas import (
    ERRORS,
    ID_PATTERN,
    Thread,
    ThreadCount,
    ThreadCreate,
    ThreadHistoryQuery,
    ThreadPatch,
    ThreadPrune,
    ThreadSearch,
    ThreadState,
    ThreadStateUpdate,
    ThreadStatus,
)

router = APIRouter(tags=["Threads"], responses=ERRORS)
ThreadId = Annotated[str, Path(pattern=ID_PATTERN, description="The thread's id.")]


def _status(lane: dict[str, Any]) -> ThreadStatus:
    if lane.get("active"):
        return "busy"
    last = lane.get("last_status")
    if last == Status.ERROR:
        return "error"
    return "interrupted" if last == Status.INTERRUPTED else "idle"


async def _lane(flow: RunFlow, thread_id: str) -> dict[str, Any]:
    lanes: dict[str, dict[str, Any]] = await flow.store.lanes_as_seen([thread_id])
    return lanes[thread_id]


def _thread(found: memory_api.Thread, lane: dict[str, Any], messages: list[Any] | None) -> Thread:
    values: dict[str, Any] = {"messages": messages} if messages is not None else {}
    return Thread(
        thread_id=found.thread_id,
        created_at=found.created_at,
        updated_at=found.updated_at,
        metadata=found.metadata or {},
        status=_status(lane),
        values=values,
        messages=messages,
    )


async def _get(flow: Flow, thread_id: str) -> memory_api.Thread:
    found = await flow.thread(thread_id)
    if found is None:
        raise HTTPException(404, f"no thread '{thread_id}'")
    return memory_api.Thread.model_validate(found)


@router.post("/threads", response_model=Thread)
async def create_thread(body: ThreadCreate, flow: Flow) -> Thread:
    create = upstream.request(
        memory_api.ThreadCreate, thread_id=body.thread_id, metadata=body.metadata
    )
    found = await flow.memory.create_thread(create)
    if not found.created and body.if_exists == "raise":
        raise HTTPException(
            409, f"thread '{body.thread_id}' exists (if_exists=do_nothing returns it)"
        )
    first = [m for step in body.supersteps or [] for m in _step_messages(step)]
    if found.created and first:
        await _append(flow, found.thread_id, first)
        return await get_thread(found.thread_id, flow)
    return _thread(found, await _lane(flow, found.thread_id), [])


def _step_messages(step: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of a LangGraph superstep's updates (``values.messages``)."""
    found: list[dict[str, Any]] = []
    for update in step.get("updates") or []:
        values = update.get("values") if isinstance(update, dict) else None
        found += _messages_of(values)
    return found


def _messages_of(values: Any) -> list[dict[str, Any]]:
    if isinstance(values, list):
        return [m for v in values for m in _messages_of(v)]
    if not isinstance(values, dict) or not isinstance(values.get("messages"), list):
        raise HTTPException(422, "values: {'messages': [...]} is the state a thread has")
    out = []
    for m in values["messages"]:
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise HTTPException(422, "values.messages: each needs a role and a content")
        out.append({"role": m["role"], "content": m["content"]})
    return out


async def _append(flow: Flow, thread_id: str, items: list[dict[str, Any]]) -> None:
    add = upstream.request(memory_api.ItemsAdd, items=items)
    await flow.memory.add_items(thread_id, add)


@router.post("/threads/search", response_model=list[Thread])
async def search_threads(body: ThreadSearch, flow: Flow) -> list[Thread]:
    if body.values:
        raise HTTPException(422, "values: searching threads by state values is not supported")
    # A status filter is applied after the metadata search: page over enough to fill it.
    limit = body.limit if body.status is None else min(1000, (body.offset + body.limit) * 4)
    offset = body.offset if body.status is None else 0
    search = upstream.request(
        memory_api.ThreadSearch, metadata=body.metadata, limit=limit, offset=offset
    )
    threads = (await flow.memory.search_threads(search)).threads
    lanes = await flow.store.lanes_as_seen([t.thread_id for t in threads])
    out = [_thread(t, lanes[t.thread_id], None) for t in threads]
    if body.status is not None:
        out = [t for t in out if t.status == body.status][body.offset : body.offset + body.limit]
    return out


@router.post("/threads/count", response_model=int)
async def count_threads(body: ThreadCount, flow: Flow) -> int:
    found = await search_threads(
        ThreadSearch(metadata=body.metadata, values=body.values, status=body.status, limit=1000),
        flow,
    )
    return len(found)


@router.post("/threads/prune")
async def prune_threads(body: ThreadPrune, flow: Flow) -> dict[str, int]:
    """Delete the listed threads (and their runs); those already gone are not counted."""
    pruned = 0
    for thread_id in body.thread_ids:
        if await flow.thread(thread_id) is not None:
            await delete_thread(thread_id, flow)
            pruned += 1
    return {"pruned_count": pruned}


@router.get("/threads/{thread_id}/stream")
async def thread_stream(thread_id: ThreadId) -> None:
    raise HTTPException(
        400,
        "thread streams are not supported: join a run's stream "
        f"(GET /threads/{thread_id}/runs/{{run_id}}/stream)",
    )


@router.get("/threads/{thread_id}", response_model=Thread)
async def get_thread(thread_id: ThreadId, flow: Flow) -> Thread:
    found = await _get(flow, thread_id)
    return _thread(found, await _lane(flow, thread_id), await flow.thread_messages(thread_id))


@router.patch("/threads/{thread_id}", response_model=Thread)
async def patch_thread(thread_id: ThreadId, body: ThreadPatch, flow: Flow) -> Thread:
    patch = upstream.request(memory_api.ThreadPatch, metadata=body.metadata)
    found = await flow.memory.patch_thread(thread_id, patch)
    return _thread(found, await _lane(flow, thread_id), None)


@router.delete("/threads/{thread_id}", status_code=204, response_class=Response)
async def delete_thread(thread_id: ThreadId, flow: Flow) -> Response:
    lane = await flow.store.lane(thread_id)
    await flow.memory.delete_thread(thread_id)
    for run_id in [r for r in [lane.get("active"), *lane.get("queue", [])] if r]:
        await flow.cancel(run_id)
    for run_id in await flow.store.index(thread_id):
        await flow.store.delete(run_id)
    await flow.store.forget_thread(thread_id)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/copy", response_model=Thread)
async def copy_thread(thread_id: ThreadId, flow: Flow) -> Thread:
    found = await flow.memory.copy_thread(thread_id)
    return _thread(found, await _lane(flow, found.thread_id), None)


def _state(thread_id: str, found: memory_api.Thread, messages: list[Any], upto: int) -> ThreadState:
    return ThreadState(
        checkpoint={"checkpoint_id": f"{thread_id}:{upto}", "thread_id": thread_id},
        values={"messages": messages},
        messages=messages,
        metadata={"item_count": upto},
        created_at=found.updated_at,
    )


@router.get("/threads/{thread_id}/state", response_model=ThreadState)
async def get_thread_state(thread_id: ThreadId, flow: Flow) -> ThreadState:
    found = await _get(flow, thread_id)
    messages = await flow.thread_messages(thread_id)
    return _state(thread_id, found, messages, found.item_count)


@router.post("/threads/{thread_id}/state")
async def update_thread_state(
    thread_id: ThreadId, body: ThreadStateUpdate, flow: Flow
) -> dict[str, Any]:
    """Add messages to the thread (LangGraph's update_state with ``{'messages': [...]}``);
    refused while a run is active on it."""
    if body.checkpoint or body.checkpoint_id:
        raise HTTPException(422, "checkpoint: updating a past state is not supported")
    items = _messages_of(body.values)
    await _get(flow, thread_id)
    if (await _lane(flow, thread_id)).get("active"):
        raise HTTPException(409, f"thread '{thread_id}' is busy with a run: update it after")
    await _append(flow, thread_id, items)
    found = await _get(flow, thread_id)
    upto = found.item_count
    return {"checkpoint": {"checkpoint_id": f"{thread_id}:{upto}", "thread_id": thread_id}}


@router.patch("/threads/{thread_id}/state")
async def patch_thread_state(thread_id: ThreadId) -> None:
    raise HTTPException(
        400,
        "patching a state's metadata is not supported (states here are run boundaries, not "
        f"checkpoints): PATCH /threads/{thread_id} changes the thread's metadata",
    )


@router.post("/threads/{thread_id}/history", response_model=list[ThreadState])
async def post_thread_history(
    thread_id: ThreadId, body: ThreadHistoryQuery, flow: Flow
) -> list[ThreadState]:
    """The history, as LangGraph's SDKs ask for it (a POST with the query in the body)."""
    if body.metadata or body.checkpoint:
        raise HTTPException(422, "metadata, checkpoint: filtering the history is not supported")
    before = body.before
    if isinstance(before, dict):
        before = str(before.get("checkpoint_id") or "")
    return await get_thread_history(thread_id, flow, body.limit, before or None)


@router.get("/threads/{thread_id}/history", response_model=list[ThreadState])
async def get_thread_history(
    thread_id: ThreadId,
    flow: Flow,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> list[ThreadState]:
    """Past states, newest first: one per run boundary (after each run's items)."""
    found = await _get(flow, thread_id)
    items = await flow.thread_items(thread_id)
    runs = await flow.store.get_many(await flow.store.index(thread_id))
    bounds = sorted({found.item_count} | {r.item_count_before for r in runs})
    if before is not None:
        try:
            upto = int(before.rsplit(":", 1)[-1])
        except ValueError:
            raise HTTPException(422, "before: a checkpoint id from this thread's history") from None
        bounds = [b for b in bounds if b < upto]
    states = [_state(thread_id, found, to_messages(items[:b]), b) for b in reversed(bounds)]
    return states[:limit]
