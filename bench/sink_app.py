"""A subscriber for the pub/sub benchmark: its sidecar pushes it every event of one topic;
it keeps, per event, the time from publish (``t`` in the data) to delivery."""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import FastAPI, Request


def create_app() -> FastAPI:
    app = FastAPI()
    topic = os.environ["BENCH_TOPIC"]
    latencies: list[float] = []
    seen: set[int] = set()
    last: dict[str, float] = {"at": 0.0}

    @app.get("/dapr/subscribe")
    async def subscribe() -> list[dict[str, Any]]:
        return [{"pubsubname": "pubsub", "topic": topic, "route": "/events"}]

    @app.post("/events")
    async def events(request: Request) -> dict[str, str]:
        data = (await request.json())["data"]
        now = time.time()
        if data["i"] not in seen:  # a redelivery is not a second delivery
            seen.add(data["i"])
            latencies.append((now - data["t"]) * 1000)
            last["at"] = now
        return {"status": "SUCCESS"}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return {"received": len(seen), "latencies_ms": latencies, "last_at": last["at"]}

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    return app
