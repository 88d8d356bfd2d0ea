"""The agent-runner service's app: wiring only.

Run with ``uvicorn --factory agentia_runner.app:create_app``.
"""

from __future__ import annotations

from fastapi import FastAPI

from agentia.service import create_service_app
from agentia_runner import handlers, workflow_ops, workflow_worker
from agentia_runner.settings import AgentRunnerSettings


async def _start(app: FastAPI) -> None:
    await handlers.start(app)
    await workflow_worker.start_workflows(app)


async def _stop(app: FastAPI) -> None:
    await workflow_worker.stop_workflows(app)
    await handlers.stop(app)


def create_app() -> FastAPI:
    return create_service_app(
        AgentRunnerSettings(),
        title="Agentia agent-runner",
        routers=[handlers.router, workflow_ops.router],
        on_startup=_start,
        on_shutdown=_stop,
    )
