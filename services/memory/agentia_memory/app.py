"""The memory service's app: wiring only.

Run with ``uvicorn --factory agentia_memory.app:create_app``.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from agentia import names
from agentia.service import create_service_app, dapr_client
from agentia_memory import kv_routes, longterm, memory_routes, metrics, routes
from agentia_memory.db import make_engine, migrate
from agentia_memory.settings import MemorySettings
from agentia_memory.store import ThreadStore


async def _start(app: FastAPI) -> None:
    # The database URL comes from the secret store, through the sidecar: never from a file.
    client = dapr_client(app)
    await client.wait_outbound()
    url = await client.get_secret(names.SECRET_POSTGRES_URL)
    engine = make_engine(url)
    await asyncio.to_thread(migrate, engine)
    app.state.engine = engine
    app.state.threads = ThreadStore(engine)
    app.state.size_metrics = metrics.register(engine)
    await longterm.start(app, engine)


async def _stop(app: FastAPI) -> None:
    await longterm.stop(app)
    metrics.unregister(app.state.size_metrics)
    app.state.engine.dispose()


def create_app() -> FastAPI:
    return create_service_app(
        MemorySettings(),
        title="Agentia memory",
        routers=[routes.router, kv_routes.router, memory_routes.router],
        on_startup=_start,
        on_shutdown=_stop,
    )
