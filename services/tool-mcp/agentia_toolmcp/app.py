"""The tool-mcp service's app: wiring only.

Run with ``uvicorn --factory agentia_toolmcp.app:create_app``.
"""

from __future__ import annotations

from fastapi import FastAPI

from agentia.service import create_service_app
from agentia_toolmcp.settings import ToolMcpSettings


def create_app() -> FastAPI:
    return create_service_app(ToolMcpSettings(), title="Agentia tool-mcp")
