"""The tool server's contents: the basic built-ins (calculator, clock, wait) here, the others
in ``tools_*.py``, then user modules and forwarded MCP servers from configuration.

Each tool's input schema comes from its typed signature; the SDK answers bad arguments with
an MCP error that names the field. Every call is bounded by a timeout (``server.py``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from agentia.safe_math import safe_eval
from agentia_toolmcp import tools_events, tools_http, tools_memory, tools_schedule
from agentia_toolmcp.config import (
    ModuleEntry,
    ToolConfigError,
    expand_env,
    import_module,
    load_config,
    register_module,
)
from agentia_toolmcp.proxy import RemoteServer, invoke_url
from agentia_toolmcp.server import ToolServer
from agentia_toolmcp.settings import ToolMcpSettings
from agentia_toolmcp.sidecar import Sidecar

log = logging.getLogger(__name__)

READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)


def add_basic_tools(server: ToolServer) -> None:
    """calculator, current_time and wait: no network at all."""

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

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False))
    async def wait(seconds: float) -> str:
        """Wait, then say so (a stand-in for a slow tool; bounded by the call timeout)."""
        await asyncio.sleep(max(0.0, seconds))
        return f"waited {seconds:g}s"


def build_server(settings: ToolMcpSettings, sidecar: Sidecar) -> ToolServer:
    """Every tool this replica serves. Raises :class:`ToolConfigError` (naming the module,
    server or field) when the configuration cannot be used: the service must not start."""
    config, base = load_config(settings.tools_config)
    server = ToolServer("agentia-tools", settings.tool_timeout_s, config.policies())
    add_basic_tools(server)
    tools_memory.register(server, sidecar, settings.memory_app_id)
    tools_events.register(server, sidecar, settings.publish_topics)
    tools_schedule.register(server, sidecar, settings.scheduler_app_id)
    tools_http.register(server, settings.http_allow_hosts, settings.http_max_bytes)

    entries = config.module_entries()
    names = {e.module for e in entries}
    entries += [
        e for e in (ModuleEntry(module=m) for m in settings.tool_modules) if e.module not in names
    ]
    for entry in entries:
        added = register_module(server, import_module(entry, base))
        log.info("user tools loaded", extra={"tool_module": entry.module, "tools": added})

    token = settings.dapr_api_token.get_secret_value()
    for remote in config.servers:
        where = f"tools config servers[{remote.name}]"
        if remote.app_id is not None:
            url = invoke_url(settings.dapr_http_url, remote.app_id)
            headers = {"dapr-api-token": token}
        else:
            url = expand_env(remote.url or "", where=where)
            headers = {}
        headers |= {k: expand_env(v, where=f"{where}.headers") for k, v in remote.headers.items()}
        server.remotes.append(
            RemoteServer(
                remote.name,
                url,
                headers=headers,
                prefix=remote.prefix,
                allow=remote.allow,
                timeout_s=remote.timeout_s,
            )
        )
    unknown = set(server.policies) - {t.name for t in server._tool_manager.list_tools()}
    if unknown and not server.remotes:
        raise ToolConfigError(f"tools config: settings for unknown tools: {sorted(unknown)}")
    return server
