"""How tools reach other services: service invocation through tool-mcp's own sidecar, as a
:class:`~agentia.contracts.Call` for the services' typed clients, with error answers turned
into a :class:`ToolError` the model can read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from mcp.server.mcpserver.exceptions import ToolError

from agentia.contracts import Call, InvokeError
from agentia.dapr import DaprClient

# A getter, not a client: the client is created in the app's lifespan, after the tools.
Sidecar = Callable[[], DaprClient]


def tool_error(what: str, method: str, exc: InvokeError) -> ToolError:
    """An error answer of ``exc.app_id`` to tool ``what``, in words the model can act on."""
    if exc.status == 404:
        return ToolError(f"{what}: {exc.app_id} does not offer {method} (404): {exc.reason}")
    if exc.status >= 500:
        return ToolError(f"{what}: {exc.app_id} is unavailable ({exc.status}): {exc.reason}")
    return ToolError(f"{what}: {exc.app_id} refused the request ({exc.status}): {exc.reason}")


def tool_call(sidecar: Sidecar, *, what: str, timeout: float) -> Call:
    """A :class:`Call` for tool ``what`` (for the typed clients): calls take ``timeout``
    unless they say otherwise; 4xx/5xx answers and an unreachable sidecar become ToolErrors."""

    async def call(
        app_id: str,
        method: str,
        *,
        http_method: str = "POST",
        body: Any = None,
        timeout: float | None = timeout,
    ) -> Any:
        try:
            return await sidecar().call(
                app_id, method, http_method=http_method, body=body, timeout=timeout
            )
        except InvokeError as exc:
            raise tool_error(what, method, exc) from None
        except httpx.HTTPError as exc:
            raise ToolError(
                f"{what}: the sidecar could not be reached ({type(exc).__name__})"
            ) from None

    return call
