"""Settings of the tool-mcp service, from the environment; validated at start-up."""

from __future__ import annotations

from agentia.settings import ServiceSettings


class ToolMcpSettings(ServiceSettings):
    """The tool-mcp service's settings (the shared ones, so far)."""
