"""A small app the integration tests put behind a real daprd to watch what the mesh does.

It subscribes to a probe topic (with a dead-letter topic), records what it receives, fails
on request, and offers a flaky method for service-invocation retries. Its own state is in
memory: each test starts its own copy.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

PROBE_TOPIC = os.environ.get("PROBE_TOPIC", "probe.events")
PUBSUB = "pubsub"
POISON_TRIES = 3  # deliveries of a poison event before the app drops it


def create_app() -> FastAPI:
    app = FastAPI()
    received: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    attempts: dict[str, int] = {}
    calls: dict[str, int] = {}

    @app.get("/dapr/subscribe")
    def subscribe() -> list[dict[str, Any]]:
        if os.environ.get("PROBE_SUBSCRIBE", "1") != "1":
            return []
        return [
            {
                "pubsubname": PUBSUB,
                "topic": PROBE_TOPIC,
                "routes": {"default": "/events/probe"},
                "deadLetterTopic": f"{PROBE_TOPIC}.dlq",
            },
            {
                "pubsubname": PUBSUB,
                "topic": f"{PROBE_TOPIC}.dlq",
                "routes": {"default": "/events/probe-dlq"},
            },
        ]

    @app.post("/events/probe")
    async def on_probe(request: Request) -> JSONResponse:
        envelope = await request.json()
        key = str(envelope.get("id"))
        attempts[key] = attempts.get(key, 0) + 1
        data = envelope.get("data") or {}
        if isinstance(data, dict) and data.get("poison"):
            # Failed like a consumer that is down (retried), then told apart as an event that
            # can never succeed (DROP: Dapr sends it to the dead-letter topic), as
            # agent-runner does with a run failing at the same step again and again.
            if attempts[key] < POISON_TRIES:
                return JSONResponse({"error": "poison event"}, status_code=500)
            return JSONResponse({"status": "DROP"})
        received.append(envelope)
        return JSONResponse({"status": "SUCCESS"})

    @app.post("/events/probe-dlq")
    async def on_dead(request: Request) -> dict[str, str]:
        dead.append(await request.json())
        return {"status": "SUCCESS"}

    @app.get("/received")
    def get_received() -> dict[str, Any]:
        return {"received": received, "dead": dead, "attempts": attempts}

    @app.post("/flaky/{key}")
    async def flaky(key: str, request: Request) -> JSONResponse:
        body = await request.json()
        calls[key] = calls.get(key, 0) + 1
        if calls[key] <= int(body.get("fail_times", 0)):
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
        return JSONResponse({"key": key, "calls": calls[key]})

    @app.get("/livez")
    def livez() -> dict[str, str]:
        return {"status": "ok"}

    return app
