"""Another MCP server whose tools tool-mcp forwards: reached by Dapr app id (through our own
sidecar, so it gets the mesh's retries, tracing and access control) or by URL. Uses the
official MCP client; one short session per call, as the servers are stateless."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, PaginatedRequestParams
from mcp.types import Tool as MCPTool


def invoke_url(dapr_http_url: str, app_id: str) -> str:
    """The MCP endpoint of app ``app_id`` through the local sidecar."""
    return f"{dapr_http_url}/v1.0/invoke/{app_id}/method/mcp"


class RemoteServer:
    """The tools of one remote MCP server, under an optional name prefix and allow-list."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        prefix: str = "",
        allow: list[str] | None = None,
        timeout_s: float = 30.0,
        list_ttl_s: float = 30.0,
    ) -> None:
        self.name = name
        self.url = url
        self.headers = dict(headers or {})
        self.prefix = prefix
        self.allow = set(allow or [])
        self.timeout_s = timeout_s
        self.list_ttl_s = list_ttl_s
        self._listed: list[MCPTool] = []
        self._listed_at = -float("inf")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[ClientSession]:
        async with (
            httpx2.AsyncClient(headers=self.headers, timeout=self.timeout_s) as http,
            streamable_http_client(self.url, http_client=http, terminate_on_close=False) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            yield session

    def _exposed(self, remote_name: str) -> str:
        return f"{self.prefix}{remote_name}"

    async def tools(self) -> list[MCPTool]:
        """The server's tools under their exposed names, listed again after ``list_ttl_s``."""
        if time.monotonic() - self._listed_at < self.list_ttl_s:
            return self._listed
        found: list[MCPTool] = []
        async with self.session() as session:
            params: PaginatedRequestParams | None = None
            while True:
                page = await session.list_tools(params=params)
                found += page.tools
                if not page.next_cursor:
                    break
                params = PaginatedRequestParams(cursor=page.next_cursor)
        self._listed = [
            t.model_copy(update={"name": self._exposed(t.name)})
            for t in found
            if not self.allow or t.name in self.allow
        ]
        self._listed_at = time.monotonic()
        return self._listed

    async def call(
        self, tool: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None
    ) -> CallToolResult:
        remote_name = tool.removeprefix(self.prefix)
        try:
            async with self.session() as session:
                return await session.call_tool(remote_name, arguments, meta=meta)  # type: ignore[arg-type]
        except Exception as exc:  # the remote server's failure, told to the model plainly
            raise ToolError(f"{tool}: MCP server '{self.name}' failed: {exc!r}") from None
