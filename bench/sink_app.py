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
        return [
            {"pubsubname": "pubsub", "topic": topic, "route": "/events"},
            # The same events many to a call: up to the component's prefetch, or what 5 ms
            # gathered.
            {
                "pubsubname": "pubsub",
                "topic": f"{topic}.bulk",
                "route": "/events/bulk",
                "bulkSubscribe": {
                    "enabled": True,
                    "maxMessagesCount": 100,
                    "maxAwaitDurationMs": 5,
                },
            },
        ]

    def keep(data: dict[str, Any], now: float) -> None:
        if data["i"] not in seen:  # a redelivery is not a second delivery
            seen.add(data["i"])
            latencies.append((now - data["t"]) * 1000)
            last["at"] = now

    @app.post("/events")
    async def events(request: Request) -> dict[str, str]:
        keep((await request.json())["data"], time.time())
        return {"status": "SUCCESS"}

    @app.post("/events/bulk")
    async def bulk(request: Request) -> dict[str, list[dict[str, str]]]:
        entries = (await request.json())["entries"]
        now = time.time()
        for entry in entries:
            keep(entry["event"]["data"], now)
        return {"statuses": [{"entryId": e["entryId"], "status": "SUCCESS"} for e in entries]}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return {"received": len(seen), "latencies_ms": latencies, "last_at": last["at"]}

    @app.post("/reset")
    async def reset() -> dict[str, str]:
        """Forget what was received (the next measurement publishes the same numbers)."""
        latencies.clear()
        seen.clear()
        last["at"] = 0.0
        return {"status": "ok"}

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    return app
