"""Store endpoints of the Agent Protocol: items by namespace and key, search, namespaces.
The store lives in the memory service; the gateway checks the body and passes it on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from agentia.contracts import memory as memory_api
from agentia_gateway.deps import Memory
from agentia_gateway.schemas import (
    ERRORS,
    Item,
    ListNamespaceResponse,
    SearchItemsResponse,
    StoreDelete,
    StoreNamespaces,
    StorePut,
    StoreSearch,
)
from agentia_gateway.upstream import request as memory_request

router = APIRouter(tags=["Store"], responses=ERRORS)


@router.put("/store/items", status_code=204, response_class=Response)
async def put_item(body: StorePut, memory: Memory) -> Response:
    await memory.put_item(memory_request(memory_api.PutItem, **body.model_dump()))
    return Response(status_code=204)


@router.get("/store/items", response_model=Item)
async def get_item(
    memory: Memory,
    key: Annotated[str, Query(min_length=1, max_length=256)],
    namespace: Annotated[list[str] | None, Query(max_length=10)] = None,
    refresh_ttl: bool = True,
) -> Item:
    # LangGraph's SDK sends the namespace as one dotted string; the protocol as a list.
    parts = [p for n in namespace or [] for p in n.split(".")] if namespace else []
    ref = memory_request(memory_api.GetItem, namespace=parts, key=key, refresh_ttl=refresh_ttl)
    found = await memory.get_item(ref)
    return Item.model_validate(found.model_dump())


@router.delete("/store/items", status_code=204, response_class=Response)
async def delete_item(body: StoreDelete, memory: Memory) -> Response:
    await memory.delete_item(memory_request(memory_api.ItemRef, **body.model_dump()))
    return Response(status_code=204)


@router.post("/store/items/search", response_model=SearchItemsResponse)
async def search_items(body: StoreSearch, memory: Memory) -> SearchItemsResponse:
    search = memory_request(memory_api.SearchItems, **body.model_dump())
    found = await memory.search_items(search)
    return SearchItemsResponse.model_validate(found.model_dump())


@router.post("/store/namespaces", response_model=ListNamespaceResponse)
async def list_namespaces(body: StoreNamespaces, memory: Memory) -> ListNamespaceResponse:
    listing = memory_request(memory_api.ListNamespaces, **body.model_dump())
    found = await memory.list_namespaces(listing)
    return ListNamespaceResponse.model_validate(found.model_dump())
