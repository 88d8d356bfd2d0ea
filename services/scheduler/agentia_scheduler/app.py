"""The scheduler service's app: wiring only.

Run with ``uvicorn --factory agentia_scheduler.app:create_app``.
"""

from __future__ import annotations

from fastapi import FastAPI

from agentia.service import create_service_app
from agentia_scheduler.settings import SchedulerSettings


def create_app() -> FastAPI:
    return create_service_app(SchedulerSettings(), title="Agentia scheduler")
