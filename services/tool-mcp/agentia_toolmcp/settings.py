"""Settings of the tool-mcp service, from the environment; validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from agentia import names
from agentia.settings import ServiceSettings

CommaList = Annotated[list[str], NoDecode]


class ToolMcpSettings(ServiceSettings):
    """Timeouts, allow-lists and where user tools come from. Everything that reaches outside
    (HTTP hosts, topics) is refused unless listed here."""

    tool_timeout_s: float = Field(
        default=30.0, gt=0, le=600, validation_alias="AGENTIA_TOOL_TIMEOUT_S"
    )
    tool_modules: CommaList = Field(
        default_factory=list,
        validation_alias="AGENTIA_TOOL_MODULES",
        description="Python modules with user tools, comma-separated (register(server) or TOOLS).",
    )
    tools_config: Path | None = Field(
        default=None,
        validation_alias="AGENTIA_TOOLS_CONFIG",
        description="tools.yaml: user tool modules, proxied MCP servers, per-tool settings.",
    )
    http_allow_hosts: CommaList = Field(
        default_factory=list,
        validation_alias="AGENTIA_TOOL_HTTP_ALLOW_HOSTS",
        description="Hosts http_fetch may GET, comma-separated; none by default (refuse all).",
    )
    http_max_bytes: int = Field(
        default=262_144, ge=1, le=16 * 1_048_576, validation_alias="AGENTIA_TOOL_HTTP_MAX_BYTES"
    )
    publish_topics: CommaList = Field(
        default_factory=list,
        validation_alias="AGENTIA_TOOL_PUBLISH_TOPICS",
        description="Topics publish_event may publish to, comma-separated; none by default.",
    )
    allowed_callers: CommaList = Field(
        default_factory=list,
        validation_alias="AGENTIA_TOOL_ALLOWED_CALLERS",
        description="App ids that may call /mcp, comma-separated; empty = any app with a sidecar.",
    )
    memory_app_id: str = Field(default=names.MEMORY, validation_alias="AGENTIA_TOOL_MEMORY_APP_ID")
    scheduler_app_id: str = Field(
        default=names.SCHEDULER, validation_alias="AGENTIA_TOOL_SCHEDULER_APP_ID"
    )

    @field_validator(
        "tool_modules", "http_allow_hosts", "publish_topics", "allowed_callers", mode="before"
    )
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value
