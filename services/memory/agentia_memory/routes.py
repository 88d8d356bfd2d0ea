"""Thread endpoints, invoked through Dapr by the gateway and agent-runner (thin: the work
is in ``store.py``). Sync handlers: FastAPI runs them in its thread pool."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from agentia.contracts import ID_PATTERN
from agentia_memory.store import Conflict, NotFound, Superseded, ThreadStore

router = APIRouter(prefix="/internal/threads")
MAX_ITEMS_PER_WRITE = 500


def _storable(value: Any) -> Any:
    """PostgreSQL's JSON cannot hold NUL characters: refuse them with a reason (422)."""
    if "\\u0000" in json.dumps(value):
        raise ValueError("text may not contain NUL (\\u0000) characters")
    return value


Storable = AfterValidator(_storable)


class ThreadCreate(BaseModel):
    """Create a thread (idempotent when ``thread_id`` is given)."""

    model_config = ConfigDict(extra="forbid")
    thread_id: str | None = Field(default=None, pattern=ID_PATTERN, description="Client-chosen id.")
    metadata: Annotated[dict[str, Any], Storable] = Field(
        default_factory=dict, description="Free-form metadata."
    )


class RunKey(BaseModel):
    """Which run writes the items, and where in the run they go (see ``add_run_items``)."""

    model_config = ConfigDict(extra="forbid")
    run_id: str = Field(pattern=ID_PATTERN, description="The run that writes them.")
    attempt: int = Field(ge=1, description="The run's attempt that writes them.")
    position: int = Field(ge=0, description="Position in the run of the first item.")


class ItemsAdd(BaseModel):
    """Items to append, in order (Responses-API input items: messages, tool calls, results).
    With ``run``, the items are keyed by the run and their position in it: written again,
    they replace what that position held instead of being appended twice."""

    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[dict[str, Any]], Storable] = Field(
        max_length=MAX_ITEMS_PER_WRITE, description="Items."
    )
    run: RunKey | None = Field(default=None, description="The run writing them, if any.")


class RunSettle(BaseModel):
    """An attempt of a run is done writing ``count`` items to the thread."""

    model_config = ConfigDict(extra="forbid")
    attempt: int = Field(ge=1, description="The attempt.")
    count: int = Field(ge=0, description="How many items this attempt wrote.")


class ThreadSearch(BaseModel):
    """Find threads by metadata (containment) or ids, newest first."""

    model_config = ConfigDict(extra="forbid")
    metadata: Annotated[dict[str, Any] | None, Storable] = Field(
        default=None, description="Metadata to contain."
    )
    ids: list[str] | None = Field(default=None, max_length=1000, description="Only these ids.")
    limit: int = Field(default=10, ge=1, le=1000, description="Page size.")
    offset: int = Field(default=0, ge=0, le=1_000_000, description="Threads to skip.")


class ThreadPatch(BaseModel):
    """Metadata to merge into the thread's."""

    model_config = ConfigDict(extra="forbid")
    metadata: Annotated[dict[str, Any], Storable] = Field(
        description="Keys to set; others are kept."
    )


class ThreadCopy(BaseModel):
    """Copy a thread under a new id."""

    model_config = ConfigDict(extra="forbid")
    thread_id: str | None = Field(default=None, pattern=ID_PATTERN, description="The new id.")


class Truncate(BaseModel):
    """Keep only the first ``count`` items."""

    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=0, description="Items to keep.")


def _store(request: Request) -> ThreadStore:
    store: ThreadStore = request.app.state.threads
    return store


def _check_id(thread_id: str) -> None:
    import re

    if not re.match(ID_PATTERN, thread_id):
        raise HTTPException(422, f"thread id '{thread_id[:40]}' is not valid ({ID_PATTERN})")


@router.post("", status_code=200)
def create(body: ThreadCreate, request: Request) -> dict[str, Any]:
    thread, created = _store(request).create(body.thread_id or uuid.uuid4().hex, body.metadata)
    return {**thread, "created": created}


@router.post("/search")
def search(body: ThreadSearch, request: Request) -> dict[str, Any]:
    found = _store(request).search(body.metadata, body.ids, body.limit, body.offset)
    return {"threads": found}


@router.get("/{thread_id}")
def get(thread_id: str, request: Request) -> dict[str, Any]:
    _check_id(thread_id)
    try:
        return dict(_store(request).get(thread_id))
    except NotFound:
        raise HTTPException(404, f"no thread '{thread_id}'") from None


@router.patch("/{thread_id}")
def patch(thread_id: str, body: ThreadPatch, request: Request) -> dict[str, Any]:
    _check_id(thread_id)
    try:
        return dict(_store(request).patch(thread_id, body.metadata))
    except NotFound:
        raise HTTPException(404, f"no thread '{thread_id}'") from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/{thread_id}/copy")
def copy(thread_id: str, body: ThreadCopy, request: Request) -> dict[str, Any]:
    _check_id(thread_id)
    try:
        return dict(_store(request).copy(thread_id, body.thread_id or uuid.uuid4().hex))
    except NotFound:
        raise HTTPException(404, f"no thread '{thread_id}'") from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/{thread_id}/items/truncate")
def truncate(thread_id: str, body: Truncate, request: Request) -> dict[str, Any]:
    _check_id(thread_id)
    try:
        return {"item_count": _store(request).truncate(thread_id, body.count)}
    except NotFound:
        raise HTTPException(404, f"no thread '{thread_id}'") from None


@router.delete("/{thread_id}", status_code=204)
def delete(thread_id: str, request: Request) -> None:
    _check_id(thread_id)
    try:
        _store(request).delete(thread_id)
    except NotFound:
        raise HTTPException(404, f"no thread '{thread_id}'") from None


@router.get("/{thread_id}/items")
def items(
    thread_id: str,
    request: Request,
    limit: int | None = Query(default=None, ge=1, le=10_000),
    run_id: str | None = Query(default=None, pattern=ID_PATTERN, max_length=128),
    attempt: int | None = Query(default=None, ge=1),
) -> dict[str, Any]:
    """The thread's items; with ``run_id`` and ``attempt``, as that attempt of the run sees
    them (without what earlier attempts left that it has not written again)."""
    _check_id(thread_id)
    try:
        return {"items": _store(request).items(thread_id, limit, run_id, attempt)}
    except NotFound:
        raise HTTPException(404, f"no thread '{thread_id}'") from None


@router.post("/{thread_id}/items")
def add(thread_id: str, body: ItemsAdd, request: Request) -> dict[str, Any]:
    _check_id(thread_id)
    store = _store(request)
    try:
        if body.run is None:
            return {"item_count": store.add_items(thread_id, body.items)}
        run = body.run
        count = store.add_run_items(thread_id, run.run_id, run.attempt, run.position, body.items)
        return {"item_count": count}
    except Superseded as exc:
        raise HTTPException(409, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/{thread_id}/runs/{run_id}/settle")
def settle_run(thread_id: str, run_id: str, body: RunSettle, request: Request) -> dict[str, Any]:
    """Remove what earlier attempts of the run left beyond the ``count`` items this one wrote."""
    _check_id(thread_id)
    _check_id(run_id)
    try:
        count = _store(request).settle_run(thread_id, run_id, body.attempt, body.count)
        return {"item_count": count}
    except NotFound:
        raise HTTPException(404, f"no thread '{thread_id}'") from None
    except Superseded as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/{thread_id}/items/pop")
def pop(thread_id: str, request: Request) -> dict[str, Any]:
    _check_id(thread_id)
    try:
        return {"item": _store(request).pop_item(thread_id)}
    except NotFound:
        raise HTTPException(404, f"no thread '{thread_id}'") from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None


@router.delete("/{thread_id}/items", status_code=204)
def clear(thread_id: str, request: Request) -> None:
    _check_id(thread_id)
    try:
        _store(request).clear(thread_id)
    except NotFound:
        raise HTTPException(404, f"no thread '{thread_id}'") from None
