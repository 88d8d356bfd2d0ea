"""Store endpoints (what the gateway's /store endpoints call through Dapr). Thin: the rules
and the work are in ``kv.py``; the requests and answers are the contract's, in
``agentia.contracts.memory_store``. Sync handlers: FastAPI runs them in its thread pool."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from agentia.contracts.memory_store import (
    STORE,
    GetItem,
    ItemRef,
    ListNamespaces,
    Namespaces,
    PutItem,
    ScoredItem,
    ScoredItems,
    SearchItems,
    StoreItem,
)
from agentia_memory.embeddings import EmbeddingError
from agentia_memory.kv import KVStore
from agentia_memory.kv_rules import InvalidInput, NotFound, TooLarge

router = APIRouter(prefix=f"/{STORE}")


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
def get(body: GetItem, request: Request) -> StoreItem:
    try:
        found = kv(request).get(body.namespace, body.key, body.refresh_ttl)
        return StoreItem.model_validate(found.as_dict())
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
def search(body: SearchItems, request: Request) -> ScoredItems:
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
    return ScoredItems(items=[ScoredItem.model_validate(i.as_dict(with_score=True)) for i in items])


@router.post("/namespaces")
def namespaces(body: ListNamespaces, request: Request) -> Namespaces:
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
    return Namespaces(namespaces=found)
