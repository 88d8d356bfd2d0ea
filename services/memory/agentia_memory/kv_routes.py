"""Store endpoints (what the gateway's /store endpoints call through Dapr). Thin: the rules
and the work are in ``kv.py``. Sync handlers: FastAPI runs them in its thread pool."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from agentia_memory.embeddings import EmbeddingError
from agentia_memory.kv import (
    MAX_DEPTH,
    MAX_KEY,
    MAX_TTL_MINUTES,
    InvalidInput,
    KVStore,
    NotFound,
    TooLarge,
)

router = APIRouter(prefix="/internal/store")

Namespace = list[str]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PutItem(_Body):
    """Insert or replace an item."""

    namespace: Namespace = Field(min_length=1, max_length=MAX_DEPTH, description="Labels.")
    key: str = Field(min_length=1, max_length=MAX_KEY, description="Key in the namespace.")
    value: dict[str, Any] = Field(description="A JSON object, at most 64 KiB serialised.")
    ttl: float | None = Field(
        default=None, gt=0, le=MAX_TTL_MINUTES, description="Minutes to live; None = forever."
    )
    index: list[str] | Literal[False] | None = Field(
        default=None,
        description="What to embed: None = the whole value, field paths, or false = nothing.",
    )


class ItemRef(_Body):
    namespace: Namespace = Field(min_length=1, max_length=MAX_DEPTH)
    key: str = Field(min_length=1, max_length=MAX_KEY)


class GetItem(ItemRef):
    refresh_ttl: bool = Field(default=True, description="Push the item's expiry out.")


class SearchItems(_Body):
    namespace_prefix: Namespace | None = Field(default=None, max_length=MAX_DEPTH)
    filter: dict[str, Any] | None = Field(default=None, description="Equality or $ops.")
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    query: str | None = Field(default=None, max_length=8000, description="Semantic query.")
    refresh_ttl: bool = True


class ListNamespaces(_Body):
    prefix: Namespace | None = Field(default=None, max_length=MAX_DEPTH)
    suffix: Namespace | None = Field(default=None, max_length=MAX_DEPTH)
    max_depth: int | None = Field(default=None, ge=1)
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


def kv(request: Request) -> KVStore:
    store: KVStore = request.app.state.kv
    return store


def bad_input(exc: InvalidInput) -> HTTPException:
    # Size is its own status: the request was well-formed, just too big to keep.
    status = 413 if isinstance(exc, TooLarge) else 422
    return HTTPException(status, str(exc))


def unavailable(exc: EmbeddingError) -> HTTPException:
    return HTTPException(503, f"embeddings unavailable: {exc}", headers={"Retry-After": "1"})


@router.post("/items/put", status_code=204)
def put(body: PutItem, request: Request) -> Response:
    try:
        kv(request).put(body.namespace, body.key, body.value, ttl=body.ttl, index=body.index)
    except InvalidInput as exc:
        raise bad_input(exc) from None
    except EmbeddingError as exc:
        raise unavailable(exc) from None
    return Response(status_code=204)


@router.post("/items/get")
def get(body: GetItem, request: Request) -> dict[str, Any]:
    try:
        return dict(kv(request).get(body.namespace, body.key, body.refresh_ttl).as_dict())
    except InvalidInput as exc:
        raise bad_input(exc) from None
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("/items/delete", status_code=204)
def delete(body: ItemRef, request: Request) -> Response:
    try:
        kv(request).delete(body.namespace, body.key)
    except InvalidInput as exc:
        raise bad_input(exc) from None
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(status_code=204)


@router.post("/items/search")
def search(body: SearchItems, request: Request) -> dict[str, Any]:
    try:
        items = kv(request).search(
            body.namespace_prefix,
            filter=body.filter,
            limit=body.limit,
            offset=body.offset,
            query=body.query,
            refresh_ttl=body.refresh_ttl,
        )
    except InvalidInput as exc:
        raise bad_input(exc) from None
    except EmbeddingError as exc:
        raise unavailable(exc) from None
    return {"items": [i.as_dict(with_score=True) for i in items]}


@router.post("/namespaces")
def namespaces(body: ListNamespaces, request: Request) -> dict[str, Any]:
    try:
        found = kv(request).list_namespaces(
            prefix=body.prefix,
            suffix=body.suffix,
            max_depth=body.max_depth,
            limit=body.limit,
            offset=body.offset,
        )
    except InvalidInput as exc:
        raise bad_input(exc) from None
    return {"namespaces": found}
