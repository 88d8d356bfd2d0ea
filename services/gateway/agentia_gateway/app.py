"""The gateway service's app: wiring only.

Run with ``uvicorn --factory agentia_gateway.app:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from agentia.dapr import DaprError
from agentia.service import create_service_app, dapr_client
from agentia_gateway import (
    agents_api,
    catalog,
    crons_api,
    errors,
    internal_runs,
    run_events,
    runs_api,
    store_api,
    threads_api,
    usage_api,
    workflows_api,
)
from agentia_gateway.door import Authenticate
from agentia_gateway.reconcile import Reconciler
from agentia_gateway.run_flow import RunFlow
from agentia_gateway.schemas import validation_detail
from agentia_gateway.security import (
    Authenticator,
    BodyLimit,
    RateLimiter,
)
from agentia_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)
API_PREFIXES = ("/agents", "/assistants", "/threads", "/runs", "/store", "/workflows", "/usage")
DOC_PREFIXES = ("/docs", "/openapi.json", "/redoc")


async def _start(app: FastAPI) -> None:
    settings: GatewaySettings = app.state.settings
    client = dapr_client(app)
    app.state.runs = RunFlow(app)
    app.state.catalog = app.state.runs.catalog
    app.state.reconciler = Reconciler(app.state.runs)
    app.state.auth = Authenticator(client, settings.keys_refresh_s)
    app.state.limiter = RateLimiter(client, settings.rate_limit_per_minute)
    try:
        await client.wait_outbound(timeout=30)
        await app.state.auth.refresh()
    except (DaprError, httpx.HTTPError, TimeoutError, ValueError) as exc:
        log.warning("API keys not loaded yet; retrying in the background", extra={"why": str(exc)})
    app.state.keys_task = asyncio.create_task(app.state.auth.keep_fresh())
    app.state.reconcile_task = asyncio.create_task(app.state.reconciler.run_forever())


async def _stop(app: FastAPI) -> None:
    for task in (app.state.keys_task, app.state.reconcile_task):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app() -> FastAPI:
    settings = GatewaySettings()
    app = create_service_app(
        settings,
        title="Agentia gateway",
        description="The Agent Protocol (and LangGraph Platform's names) over an agent mesh.",
        routers=[
            run_events.router,
            catalog.router,
            agents_api.router,
            threads_api.router,
            runs_api.router,
            store_api.router,
            workflows_api.router,
            crons_api.router,
            usage_api.router,
            usage_api.internal,
            internal_runs.router,
        ],
        public_prefixes=DOC_PREFIXES + API_PREFIXES,
        on_startup=_start,
        on_shutdown=_stop,
    )

    app.add_middleware(Authenticate, owner=app, prefixes=API_PREFIXES)

    errors.install(app)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_detail(exc.errors())}, status_code=422)

    # Public API only: an event the sidecar delivers was accepted upstream already, and a
    # refusal here would only bounce it between its topic and the dead-letter topic.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, prefixes=API_PREFIXES)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["authorization", "x-api-key", "content-type", "last-event-id"],
            expose_headers=["content-location", "retry-after"],
        )
    return app
