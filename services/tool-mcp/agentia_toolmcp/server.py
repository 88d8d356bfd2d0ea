"""The MCP server that agents see: local tools plus proxied MCP servers, one timeout for
every call, and approval marks in each tool's ``_meta``.

No Dapr and no FastAPI here; the proxies and tools get their clients from ``tools.py``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, InputRequiredResult
from mcp.types import Tool as MCPTool

from agentia import names

log = logging.getLogger(__name__)

# Keys of a tool's ``_meta`` that the runner and workflows read (documented in docs/tools.md).
REQUIRES_APPROVAL = "agentia/requires_approval"
TIMEOUT_S = "agentia/timeout_s"
SOURCE = "agentia/source"


def request_meta(context: Context[Any, Any] | None) -> dict[str, Any] | None:
    """The calling request's ``_meta`` (None outside a request)."""
    try:
        meta = context.request_context.meta if context is not None else None
    except ValueError:  # a Context made outside a request
        return None
    return dict(meta) if meta else None


def effect_key(context: Context[Any, Any] | None) -> str | None:
    """The caller's key for this call's effect (``names.MCP_EFFECT_KEY``), if it sent one:
    the same key again is the same effect again (a retried run), to be applied once."""
    key = (request_meta(context) or {}).get(names.MCP_EFFECT_KEY)
    return str(key) if key else None


@dataclass(frozen=True)
class ToolPolicy:
    """Per-tool settings from tools.yaml; None = keep what the tool itself says."""

    requires_approval: bool | None = None
    timeout_s: float | None = None


class RemoteTools(Protocol):
    """Another MCP server whose tools this one forwards (see ``proxy.py``)."""

    name: str

    async def tools(self) -> list[MCPTool]: ...

    async def call(
        self, tool: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None
    ) -> CallToolResult: ...


class ToolServer(MCPServer):
    """An :class:`MCPServer` that bounds every call, marks tools needing approval and
    forwards the tools of other MCP servers, so an agent sees one server."""

    def __init__(
        self,
        name: str,
        default_timeout_s: float,
        policies: dict[str, ToolPolicy] | None = None,
    ) -> None:
        super().__init__(name)
        self.default_timeout_s = default_timeout_s
        self.policies: dict[str, ToolPolicy] = dict(policies or {})
        self.remotes: list[RemoteTools] = []
        self._routes: dict[str, RemoteTools] = {}

    def timeout_for(self, tool: str, meta: dict[str, Any] | None = None) -> float:
        policy = self.policies.get(tool)
        if policy and policy.timeout_s is not None:
            return policy.timeout_s
        if meta and isinstance(meta.get(TIMEOUT_S), int | float):
            return float(meta[TIMEOUT_S])
        return self.default_timeout_s

    def _marked(self, tool: MCPTool) -> MCPTool:
        meta = dict(tool.meta or {})
        policy = self.policies.get(tool.name)
        if policy and policy.requires_approval is not None:
            meta[REQUIRES_APPROVAL] = policy.requires_approval
        meta.setdefault(REQUIRES_APPROVAL, False)
        meta[TIMEOUT_S] = self.timeout_for(tool.name, tool.meta)
        return tool.model_copy(update={"meta": meta})

    async def _remote_tools(self, local: set[str]) -> list[MCPTool]:
        found: list[MCPTool] = []
        routes: dict[str, RemoteTools] = {}
        for remote in self.remotes:
            try:
                listed = await asyncio.wait_for(remote.tools(), self.default_timeout_s)
            except Exception as exc:  # one server down must not hide the others' tools
                log.warning(
                    "MCP server unavailable", extra={"server": remote.name, "reason": repr(exc)}
                )
                continue
            for tool in listed:
                if tool.name in local or tool.name in routes:
                    log.warning(
                        "tool name taken; skipped", extra={"server": remote.name, "tool": tool.name}
                    )
                    continue
                routes[tool.name] = remote
                meta = {**(tool.meta or {}), SOURCE: remote.name}
                found.append(tool.model_copy(update={"meta": meta}))
        self._routes = routes
        return found

    async def list_tools(self) -> list[MCPTool]:
        local = await super().list_tools()
        remote = await self._remote_tools({t.name for t in local}) if self.remotes else []
        return [self._marked(t) for t in [*local, *remote]]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        local = self._tool_manager.get_tool(name)
        remote: RemoteTools | None = None
        if local is None and self.remotes:
            if name not in self._routes:  # stateless: this replica may not have listed yet
                await self._remote_tools({t.name for t in await super().list_tools()})
            remote = self._routes.get(name)
        timeout = self.timeout_for(name, local.meta if local else None)
        try:
            async with asyncio.timeout(timeout):
                if remote is not None:  # its _meta (the effect key) goes on with the call
                    return await remote.call(name, arguments, request_meta(context))
                return await super().call_tool(name, arguments, context)
        except TimeoutError:
            raise ToolError(f"{name}: the call timed out after {timeout:g}s") from None
