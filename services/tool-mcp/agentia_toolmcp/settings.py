"""Settings of the tool-mcp service, from the environment; validated at start-up."""

from __future__ import annotations

from pydantic import Field

from agentia.settings import ServiceSettings


class ToolMcpSettings(ServiceSettings):
    """How long a tool call may take."""

    tool_timeout_s: float = Field(
        default=30.0, gt=0, le=600, validation_alias="AGENTIA_TOOL_TIMEOUT_S"
    )
