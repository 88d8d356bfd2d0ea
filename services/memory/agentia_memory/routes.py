"""Thread endpoints, invoked through Dapr by the gateway and agent-runner (thin: the work
is in ``store.py``; the requests and answers are the contract's, in
``agentia.contracts.memory_threads``). Sync handlers: FastAPI runs them in its thread pool."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from agentia.contracts import ID_PATTERN
from agentia.contracts.memory_threads import (
    THREADS,
    ItemCount,
    ItemsAdd,
    ItemsQuery,
    PoppedItem,
    RunSettle,
    Thread,
    ThreadCopy,
    ThreadCreate,
    ThreadCreated,
    ThreadItems,
    ThreadList,
    ThreadPatch,
    ThreadSearch,
    Truncate,
)
from agentia_memory.store import Conflict, NotFound, Superseded, ThreadStore

router = APIRouter(prefix=f"/{THREADS}")


def _store(request: Request) -> ThreadStore:
    store: ThreadStore = request.app.state.threads
    return store


def _check_id(thread_id: str) -> None:
    if not re.match(ID_PATTERN, thread_id):
        raise HTTPException(422, f"thread id '{thread_id[:40]}' is not valid ({ID_PATTERN})")


def _missing(thread_id: str) -> HTTPException:
    return HTTPException(404, f"no thread '{thread_id}'")


@router.post("", status_code=200)
def create(body: ThreadCreate, request: Request) -> ThreadCreated:
    thread, created = _store(request).create(body.thread_id or uuid.uuid4().hex, body.metadata)
    return ThreadCreated.model_validate({**thread, "created": created})


@router.post("/search")
def search(body: ThreadSearch, request: Request) -> ThreadList:
    found = _store(request).search(body.metadata, body.ids, body.limit, body.offset)
    return ThreadList.model_validate({"threads": found})


@router.get("/{thread_id}")
def get(thread_id: str, request: Request) -> Thread:
    _check_id(thread_id)
    try:
        return Thread.model_validate(_store(request).get(thread_id))
    except NotFound:
        raise _missing(thread_id) from None


@router.patch("/{thread_id}")
def patch(thread_id: str, body: ThreadPatch, request: Request) -> Thread:
    _check_id(thread_id)
    try:
        return Thread.model_validate(_store(request).patch(thread_id, body.metadata))
    except NotFound:
        raise _missing(thread_id) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/{thread_id}/copy")
def copy(thread_id: str, body: ThreadCopy, request: Request) -> Thread:
    _check_id(thread_id)
    try:
        new_id = body.thread_id or uuid.uuid4().hex
        return Thread.model_validate(_store(request).copy(thread_id, new_id))
    except NotFound:
        raise _missing(thread_id) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/{thread_id}/items/truncate")
def truncate(thread_id: str, body: Truncate, request: Request) -> ItemCount:
    _check_id(thread_id)
    try:
        return ItemCount(item_count=_store(request).truncate(thread_id, body.count))
    except NotFound:
        raise _missing(thread_id) from None


@router.delete("/{thread_id}", status_code=204)
def delete(thread_id: str, request: Request) -> None:
    _check_id(thread_id)
    try:
        _store(request).delete(thread_id)
    except NotFound:
        raise _missing(thread_id) from None


@router.get("/{thread_id}/items")
def items(thread_id: str, request: Request, query: Annotated[ItemsQuery, Query()]) -> ThreadItems:
    """The thread's items; with ``run_id`` and ``attempt``, as that attempt of the run sees
    them (without what earlier attempts left that it has not written again)."""
    _check_id(thread_id)
    try:
        found = _store(request).items(thread_id, query.limit, query.run_id, query.attempt)
    except NotFound:
        raise _missing(thread_id) from None
    return ThreadItems(items=found)


@router.post("/{thread_id}/items")
def add(thread_id: str, body: ItemsAdd, request: Request) -> ItemCount:
    _check_id(thread_id)
    store = _store(request)
    try:
        if body.run is None:
            return ItemCount(item_count=store.add_items(thread_id, body.items))
        run = body.run
        count = store.add_run_items(thread_id, run.run_id, run.attempt, run.position, body.items)
        return ItemCount(item_count=count)
    except Superseded as exc:
        raise HTTPException(409, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/{thread_id}/runs/{run_id}/settle")
def settle_run(thread_id: str, run_id: str, body: RunSettle, request: Request) -> ItemCount:
    """Remove what earlier attempts of the run left beyond the ``count`` items this one wrote."""
    _check_id(thread_id)
    _check_id(run_id)
    try:
        count = _store(request).settle_run(thread_id, run_id, body.attempt, body.count)
        return ItemCount(item_count=count)
    except NotFound:
        raise _missing(thread_id) from None
    except Superseded as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/{thread_id}/items/pop")
def pop(thread_id: str, request: Request) -> PoppedItem:
    _check_id(thread_id)
    try:
        return PoppedItem(item=_store(request).pop_item(thread_id))
    except NotFound:
        raise _missing(thread_id) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None


@router.delete("/{thread_id}/items", status_code=204)
def clear(thread_id: str, request: Request) -> None:
    _check_id(thread_id)
    try:
        _store(request).clear(thread_id)
    except NotFound:
        raise _missing(thread_id) from None
