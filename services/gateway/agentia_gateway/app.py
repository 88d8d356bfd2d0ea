"""The gateway service's app: wiring only.

Run with ``uvicorn --factory agentia_gateway.app:create_app``.
"""

from __future__ import annotations

from fastapi import FastAPI

from agentia.service import create_service_app
from agentia_gateway import agents_api, run_events
from agentia_gateway.settings import GatewaySettings


def create_app() -> FastAPI:
    return create_service_app(
        GatewaySettings(),
        title="Agentia gateway",
        routers=[run_events.router, agents_api.router],
        public_prefixes=("/docs", "/openapi.json", "/agents", "/assistants"),
    )
