"""Long-term memory endpoints and the ``runs.events`` subscriber that distils finished runs
into memories. Thin: the work is in ``memories.py`` and ``extraction.py``; the requests and
answers are the contract's, in ``agentia.contracts.memory_store``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response

from agentia import faults
from agentia.contracts import InvokeError
from agentia.contracts.memory_store import (
    MEMORIES,
    MEMORIES_DELETE,
    MEMORIES_SEARCH,
    Extraction,
    FoundMemories,
    MemoryRef,
    SavedMemory,
    SaveMemory,
    ScoredItem,
    SearchMemories,
    StoreItem,
)
from agentia.contracts.runner import RunnerClient
from agentia.events import Kind as RunKind
from agentia.events import RunEvent
from agentia.service import dapr_client, entries_answer, event_entries
from agentia_memory.embeddings import EmbeddingError
from agentia_memory.kv_routes import bad_input, unavailable
from agentia_memory.kv_rules import InvalidInput, NotFound
from agentia_memory.memories import MemoryStore, memory_namespace

log = logging.getLogger(__name__)
router = APIRouter()


def memories(app: FastAPI) -> MemoryStore:
    store: MemoryStore = app.state.memories
    return store


@router.post(f"/{MEMORIES}")
def save(body: SaveMemory, request: Request) -> SavedMemory:
    store = memories(request.app)
    try:
        key, created = store.save(
            body.namespace,
            body.content,
            body.kind,
            key=body.key,
            slot=body.slot,
            metadata=body.metadata,
        )
        item = store.kv.get(body.namespace, key, refresh_ttl=False)
    except InvalidInput as exc:
        raise bad_input(exc) from None
    except EmbeddingError as exc:
        raise unavailable(exc) from None
    return SavedMemory(key=key, created=created, item=StoreItem.model_validate(item.as_dict()))


@router.post(f"/{MEMORIES_SEARCH}")
def search(body: SearchMemories, request: Request) -> FoundMemories:
    try:
        found = memories(request.app).search(
            body.namespace_prefix,
            body.query,
            kind=body.kind,
            filter=body.filter,
            limit=body.limit,
            offset=body.offset,
        )
    except InvalidInput as exc:
        raise bad_input(exc) from None
    except EmbeddingError as exc:
        raise unavailable(exc) from None
    return FoundMemories(
        memories=[ScoredItem.model_validate(m.as_dict(with_score=True)) for m in found]
    )


@router.post(f"/{MEMORIES_DELETE}", status_code=204)
def delete(body: MemoryRef, request: Request) -> Response:
    try:
        memories(request.app).kv.delete(body.namespace, body.key)
    except InvalidInput as exc:
        raise bad_input(exc) from None
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(status_code=204)


class NotKnown:
    """The run's thread was not given (``None`` means the run had no thread)."""


NOT_KNOWN = NotKnown()


@router.get(f"/{MEMORIES}/extractions/{{run_id}}")
def extraction(run_id: str, request: Request) -> Extraction:
    found = memories(request.app).extracted(run_id)
    if found is None:
        raise HTTPException(404, f"run '{run_id}' has not been distilled into memories")
    return Extraction.model_validate(found)


async def distil(
    app: FastAPI, run_id: str, thread: str | NotKnown | None = NOT_KNOWN
) -> dict[str, Any]:
    """Distil run ``run_id`` (finished) into memories; safe to call more than once. The run's
    ``thread`` comes on its final event; without it, agent-runner's ledger is asked."""
    store = memories(app)
    if await asyncio.to_thread(store.extracted, run_id) is not None:
        return {"run_id": run_id, "done_before": True}
    if isinstance(thread, NotKnown):
        try:
            thread = (await RunnerClient(dapr_client(app).call).ledger(run_id)).thread_id
        except InvokeError as exc:
            if exc.status == 404:
                return {"run_id": run_id, "skipped": "agent-runner does not know this run"}
            raise RuntimeError(f"agent-runner answered {exc.status} for run {run_id}") from None
    thread_id = thread if isinstance(thread, str) else None
    threads = app.state.threads
    items: list[dict[str, Any]] = []
    namespace = ["memories", "runs"]
    if thread_id:
        try:
            found = await asyncio.to_thread(threads.get, thread_id)
            items = await asyncio.to_thread(threads.items, thread_id, None)
            namespace = memory_namespace(found.get("metadata") or {}, thread_id)
        except LookupError:
            items = []
    app.state.faults.hit(faults.MEMORY_IN_DISTILLATION, run_id, thread_id)
    result = await asyncio.to_thread(
        store.extract_run, run_id, thread_id, namespace, items, app.state.extractor
    )
    log.info(
        "run distilled",
        extra={
            "run_id": run_id,
            "new_memories": len(result.created),
            "updated_memories": len(result.updated),
            "done_before": result.done_before,
        },
    )
    return dict(result.as_dict())


@router.post("/events/runs-events")
async def on_run_events(request: Request) -> dict[str, Any]:
    """Finished runs become memories in the background of the run (never slowing it). The
    subscription is bulk (``components/subscriptions.yaml``): a run's other events arrive
    many to a call and are acknowledged at once."""
    bulk, entries = await event_entries(request, RunEvent)
    statuses: list[tuple[str, str]] = []
    for entry_id, event in entries:
        # A None event was kept as a dead letter.
        done = True
        if event is not None and event.kind == RunKind.RUN_COMPLETED:
            done = await _distilled(request, event)
        statuses.append((entry_id, "SUCCESS" if done else "RETRY"))
    return entries_answer(bulk, statuses)


async def _distilled(request: Request, event: RunEvent) -> bool:
    # A final event from a runner before thread ids rode on it: distil asks the ledger.
    thread = event.data.get("thread_id") if "thread_id" in event.data else NOT_KNOWN
    try:
        await distil(request.app, event.run_id, thread)
    except Exception as exc:  # any failure: Dapr redelivers, then dead-letters
        log.warning("distilling failed", extra={"run_id": event.run_id, "reason": str(exc)})
        return False
    return True
