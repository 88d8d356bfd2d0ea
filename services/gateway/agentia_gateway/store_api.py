"""Store endpoints of the Agent Protocol: items by namespace and key, search, namespaces.
The store lives in the memory service; the gateway checks the body and passes it on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from agentia import names
from agentia.dapr import DaprClient
from agentia.service import dapr_client
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
from agentia_gateway.upstream import call

router = APIRouter(tags=["Store"], responses=ERRORS)


def _client(request: Request) -> DaprClient:
    return dapr_client(request.app)


@router.put("/store/items", status_code=204, response_class=Response)
async def put_item(body: StorePut, request: Request) -> Response:
    await call(_client(request), names.MEMORY, "internal/store/items/put", body=body.model_dump())
    return Response(status_code=204)


@router.get("/store/items", response_model=Item)
async def get_item(
    request: Request,
    key: Annotated[str, Query(min_length=1, max_length=256)],
    namespace: Annotated[list[str] | None, Query(max_length=10)] = None,
    refresh_ttl: bool = True,
) -> Item:
    # LangGraph's SDK sends the namespace as one dotted string; the protocol as a list.
    parts = [p for n in namespace or [] for p in n.split(".")] if namespace else []
    body = {"namespace": parts, "key": key, "refresh_ttl": refresh_ttl}
    found = await call(_client(request), names.MEMORY, "internal/store/items/get", body=body)
    return Item.model_validate(found)


@router.delete("/store/items", status_code=204, response_class=Response)
async def delete_item(body: StoreDelete, request: Request) -> Response:
    await call(
        dapr_client(request.app),
        names.MEMORY,
        "internal/store/items/delete",
        body=body.model_dump(),
    )
    return Response(status_code=204)


@router.post("/store/items/search", response_model=SearchItemsResponse)
async def search_items(body: StoreSearch, request: Request) -> SearchItemsResponse:
    found = await call(
        dapr_client(request.app),
        names.MEMORY,
        "internal/store/items/search",
        body=body.model_dump(),
    )
    return SearchItemsResponse.model_validate(found)


@router.post("/store/namespaces", response_model=ListNamespaceResponse)
async def list_namespaces(body: StoreNamespaces, request: Request) -> ListNamespaceResponse:
    found = await call(
        _client(request), names.MEMORY, "internal/store/namespaces", body=body.model_dump()
    )
    return ListNamespaceResponse.model_validate(found)
