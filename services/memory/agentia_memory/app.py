"""The memory service's app: wiring only.

Run with ``uvicorn --factory agentia_memory.app:create_app``.
"""

from __future__ import annotations

from fastapi import FastAPI

from agentia.service import create_service_app
from agentia_memory.settings import MemorySettings


def create_app() -> FastAPI:
    return create_service_app(MemorySettings(), title="Agentia memory")
