"""The tool-mcp service's app: wiring only. MCP over streamable HTTP at ``/mcp``, stateless
(any replica answers any call), reached by agents through Dapr service invocation.

Run with ``uvicorn --factory agentia_toolmcp.app:create_app``.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import FastAPI

from agentia.dapr import DaprClient
from agentia.service import create_service_app, dapr_client
from agentia_toolmcp.access import restrict_callers
from agentia_toolmcp.settings import ToolMcpSettings
from agentia_toolmcp.tools import build_server


def create_app() -> FastAPI:
    settings = ToolMcpSettings()
    app: FastAPI | None = None

    def sidecar() -> DaprClient:
        # Tools call other services through our own sidecar; its client lives in the lifespan.
        assert app is not None
        return dapr_client(app)

    # A bad user module or tools.yaml stops the start-up here, with a message naming it.
    server = build_server(settings, sidecar)
    mcp_app = server.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True
    )

    async def start(app: FastAPI) -> None:
        # The MCP session manager runs for the app's lifetime (a mounted app's own lifespan
        # is not run by FastAPI).
        app.state.mcp_stack = AsyncExitStack()
        await app.state.mcp_stack.enter_async_context(server.session_manager.run())

    async def stop(app: FastAPI) -> None:
        await app.state.mcp_stack.aclose()

    app = create_service_app(settings, title="Agentia tool-mcp", on_startup=start, on_shutdown=stop)
    restrict_callers(app, settings.allowed_callers)
    app.mount("/", mcp_app)
    return app
