"""The agent-runner service's app: wiring only.

Run with ``uvicorn --factory agentia_runner.app:create_app``.
"""

from __future__ import annotations

from fastapi import FastAPI

from agentia.service import create_service_app
from agentia_runner import handlers
from agentia_runner.settings import AgentRunnerSettings


def create_app() -> FastAPI:
    return create_service_app(
        AgentRunnerSettings(),
        title="Agentia agent-runner",
        routers=[handlers.router],
        on_startup=handlers.start,
        on_shutdown=handlers.stop,
    )
