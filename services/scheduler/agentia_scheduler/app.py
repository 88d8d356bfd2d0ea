"""The scheduler service's app: wiring only.

Run with ``uvicorn --factory agentia_scheduler.app:create_app``.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from agentia.service import create_service_app
from agentia_scheduler import routes
from agentia_scheduler.jobs import JobsClient
from agentia_scheduler.settings import SchedulerSettings


async def _start(app: FastAPI) -> None:
    settings: SchedulerSettings = app.state.settings
    app.state.jobs = JobsClient(settings.dapr_http_url, settings.dapr_api_token.get_secret_value())
    app.state.draining = asyncio.Lock()  # one drain at a time, as a CronJob's Forbid
    app.state.info = {"drains_cut_short": 0}  # read by the mesh's watchdog


async def _stop(app: FastAPI) -> None:
    await app.state.jobs.aclose()


def create_app() -> FastAPI:
    return create_service_app(
        SchedulerSettings(),
        title="Agentia scheduler",
        routers=[routes.router],
        on_startup=_start,
        on_shutdown=_stop,
    )
