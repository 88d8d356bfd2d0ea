"""MCP tool servers reached through Dapr service invocation (MCP streamable HTTP via the
sidecar), so tool calls get the mesh's retries, tracing and access control."""

from __future__ import annotations

import asyncio
import logging

from agents.mcp import MCPServerStreamableHttp, create_static_tool_filter

from agentia_runner.effects import effect_meta

log = logging.getLogger(__name__)


class McpServers:
    """One connected client per (app id, allow-list), shared by all runs; connected lazily."""

    def __init__(self, dapr_http_url: str, dapr_api_token: str) -> None:
        self._base = dapr_http_url
        self._token = dapr_api_token
        self._servers: dict[tuple[str, tuple[str, ...]], MCPServerStreamableHttp] = {}
        self._connected: set[tuple[str, tuple[str, ...]]] = set()
        self._lock = asyncio.Lock()

    def server(self, app_id: str, allow: list[str]) -> MCPServerStreamableHttp:
        key = (app_id, tuple(sorted(allow)))
        if key not in self._servers:
            self._servers[key] = MCPServerStreamableHttp(
                params={
                    "url": f"{self._base}/v1.0/invoke/{app_id}/method/mcp",
                    "headers": {"dapr-api-token": self._token},
                    "timeout": 30,
                },
                name=app_id,
                cache_tools_list=True,
                tool_filter=create_static_tool_filter(allowed_tool_names=allow) if allow else None,
                client_session_timeout_seconds=60,
                max_retry_attempts=3,
                tool_meta_resolver=effect_meta,  # each call's effect key (effects.py)
            )
        return self._servers[key]

    async def connect(self, servers: list[MCPServerStreamableHttp]) -> None:
        """Connect the given servers if not yet connected (the tool server may start late)."""
        async with self._lock:
            for key, srv in self._servers.items():
                if srv in servers and key not in self._connected:
                    await srv.connect()  # type: ignore[no-untyped-call]
                    self._connected.add(key)
                    log.info("connected to MCP server", extra={"app_id": key[0]})

    async def close(self) -> None:
        for srv in self._servers.values():
            try:
                await srv.cleanup()  # type: ignore[no-untyped-call]
            except Exception:  # closing on shutdown: nothing left to save
                log.warning("MCP client did not close cleanly", exc_info=True)
