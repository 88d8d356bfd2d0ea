"""The built-in MCP tools (official ``mcp`` SDK). No Dapr here; they need no network.

Each tool's input schema comes from its signature; the SDK answers bad arguments with an
MCP error that names the field. Tools that change something are marked
``destructiveHint``/``readOnlyHint`` in their annotations.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from agentia.safe_math import safe_eval

READ_ONLY = ToolAnnotations(readOnlyHint=True, openWorldHint=False)


def build_server(tool_timeout_s: float) -> MCPServer:
    """An MCP server with the built-in tools; every call is bounded by ``tool_timeout_s``."""
    server: MCPServer = MCPServer("agentia-tools")

    @server.tool(annotations=READ_ONLY)
    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression, e.g. "2 * (3 + 4)"."""
        try:
            return str(safe_eval(expression))
        except ValueError as exc:
            raise ToolError(f"expression: {exc}") from None

    @server.tool(annotations=READ_ONLY)
    def current_time(timezone: str = "UTC") -> str:
        """The current date and time in an IANA time zone (e.g. Europe/Paris), ISO 8601."""
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ToolError(f"timezone: unknown time zone '{timezone}'") from None
        return datetime.now(UTC).astimezone(zone).isoformat(timespec="seconds")

    @server.tool(annotations=READ_ONLY)
    async def wait(seconds: float) -> str:
        """Wait, then say so (a stand-in for a slow tool; bounded by the call timeout)."""
        try:
            await asyncio.wait_for(asyncio.sleep(max(0.0, seconds)), timeout=tool_timeout_s)
        except TimeoutError:
            raise ToolError(f"seconds: the call timed out after {tool_timeout_s:g}s") from None
        return f"waited {seconds:g}s"

    return server
