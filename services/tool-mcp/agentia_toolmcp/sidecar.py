"""How tools reach other services: service invocation through tool-mcp's own sidecar, with
the answer turned into a result or a :class:`ToolError` the model can read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from mcp.server.mcpserver.exceptions import ToolError

from agentia.dapr import DaprClient

# A getter, not a client: the client is created in the app's lifespan, after the tools.
Sidecar = Callable[[], DaprClient]


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500] or resp.reason_phrase
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("message") or body.get("errorCode") or body
        if isinstance(detail, list):  # FastAPI's 422: name the fields
            return "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}"
                for d in detail
                if isinstance(d, dict)
            )
        return str(detail)[:500]
    return str(body)[:500]


async def call_service(
    sidecar: Sidecar, app_id: str, method: str, body: Any, *, what: str, timeout: float
) -> Any:
    """POST ``body`` to ``app_id``'s ``method``; 4xx/5xx become errors naming ``what``."""
    try:
        resp = await sidecar().invoke(app_id, method, json_body=body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ToolError(
            f"{what}: the sidecar could not be reached ({type(exc).__name__})"
        ) from None
    if resp.status_code == 404:
        raise ToolError(f"{what}: {app_id} does not offer {method} (404): {_detail(resp)}")
    if resp.status_code >= 500:
        raise ToolError(f"{what}: {app_id} is unavailable ({resp.status_code}): {_detail(resp)}")
    if resp.status_code >= 400:
        raise ToolError(
            f"{what}: {app_id} refused the request ({resp.status_code}): {_detail(resp)}"
        )
    if resp.status_code == 204 or not resp.content:
        return None
    return resp.json()
