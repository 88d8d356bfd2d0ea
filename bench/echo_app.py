"""The smallest useful app for measuring what the sidecars add: it answers at once."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "ok"}

    @app.post("/echo")
    async def echo(request: Request) -> Any:
        return await request.json()

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    return app
