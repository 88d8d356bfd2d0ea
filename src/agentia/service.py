"""What every service's FastAPI app has in common: health, tokens, dead letters, lifecycle.

A service's ``app.py`` calls :func:`create_service_app` with its settings and routers and
stays wiring only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pydantic
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agentia import __version__, names
from agentia.dapr import DaprClient, DaprError
from agentia.events import DeadLetter
from agentia.faults import Arm, Faults
from agentia.logging import setup_logging
from agentia.settings import ServiceSettings
from agentia.telemetry import instrument, setup_tracing

log = logging.getLogger(__name__)
M = TypeVar("M", bound=pydantic.BaseModel)

# Paths the sidecar's own probes and people may call without the app token.
ALWAYS_PUBLIC = ("/healthz", "/livez", "/metrics")
EVENT_PREFIX = "/events/"  # where subscriptions deliver (components/subscriptions.yaml)

Hook = Callable[[FastAPI], Awaitable[None]]


def dapr_client(app: FastAPI) -> DaprClient:
    """The service's client for its own sidecar (set up in the lifespan)."""
    client: DaprClient = app.state.dapr
    return client


async def keep_dead_letter(app: FastAPI, topic: str, envelope: dict[str, Any]) -> None:
    """Keep an event durably in the state store: nothing that cannot be handled is lost."""
    await keep_dead_letter_in(dapr_client(app), topic, envelope)


async def keep_dead_letter_in(client: DaprClient, topic: str, envelope: dict[str, Any]) -> None:
    """:func:`keep_dead_letter` through ``client``; the key is ``dlq:<topic>:<event id>``."""
    letter = DeadLetter(topic=topic, cloudevent=envelope)
    key = f"dlq:{topic}:{envelope.get('id', 'no-id')}"
    await client.save_state(names.STATE_STORE, key, letter.model_dump(mode="json"))
    log.warning("dead letter kept", extra={"topic": topic, "event_id": envelope.get("id")})


TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def event_traceparent(envelope: dict[str, Any]) -> str | None:
    """The W3C trace context a CloudEvent carries, if it carries a well-formed one: a
    producer's bad trace field (a number, an object, junk) starts a new trace, it does not
    fail the event."""
    value = envelope.get("traceparent")
    return value if isinstance(value, str) and TRACEPARENT.fullmatch(value) else None


def dead_letter_envelope(body: Any) -> dict[str, Any]:
    """The event a dead-letter subscription was handed. Those subscriptions take the raw
    bytes (``rawPayload``: components/subscriptions.yaml), so that bytes which are no
    CloudEvent reach the app to be kept instead of failing in the sidecar on every
    redelivery: the bytes come base64-encoded in a wrapper. A CloudEvent inside is returned
    as it was sent, its ``topic`` the dead-letter topic it came from; anything else as an
    envelope with no data, its id a digest of the bytes (a redelivery keeps it once) and the
    bytes kept as ``data_base64``."""
    if not isinstance(body, dict):
        return {"id": "no-id", "data": None, "raw": repr(body)[:1000]}
    encoded = body.get("data_base64")
    if not isinstance(encoded, str):
        return body  # a CloudEvent delivered as such
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        raw = encoded.encode()
    try:
        inner = json.loads(raw)
    except ValueError:
        inner = None
    if isinstance(inner, dict) and "specversion" in inner:
        # Kept under the topic it was read from (dlq:<dead-letter topic>:<id>), whatever
        # topic it was first sent to.
        if body.get("topic"):
            inner["topic"] = body["topic"]
        return inner
    return {
        "id": hashlib.sha256(raw).hexdigest()[:32],
        "topic": body.get("topic", ""),
        "datacontenttype": body.get("datacontenttype"),
        "data": None,
        "data_base64": encoded,
    }


async def event_data(request: Request, model: type[M]) -> tuple[dict[str, Any], M | None]:
    """A subscription delivery's envelope and its data as ``model``. Data that is not one is
    kept as a dead letter and comes back as None: acknowledged, never retried forever, never
    lost."""
    return await _parsed(request, await request.json(), model)


async def event_entries(
    request: Request, model: type[M]
) -> tuple[bool, list[tuple[str, M | None]]]:
    """A subscription delivery, single or bulk (a subscription with ``bulkSubscribe``: many
    events in one call), as (entry id, data) pairs and whether it was bulk. As with
    :func:`event_data`, data that is not a ``model`` is kept as a dead letter (None)."""
    body = await request.json()
    if not isinstance(body, dict) or "entries" not in body:
        _, data = await _parsed(request, body, model)
        return False, [("", data)]
    found: list[tuple[str, M | None]] = []
    for entry in body.get("entries") or []:
        event = entry.get("event")
        envelope = event if isinstance(event, dict) else {"data": event}
        envelope.setdefault("topic", body.get("topic", ""))
        _, data = await _parsed(request, envelope, model)
        found.append((str(entry.get("entryId", "")), data))
    return True, found


def entries_answer(bulk: bool, statuses: list[tuple[str, str]]) -> dict[str, Any]:
    """The answer to :func:`event_entries`' delivery: one status per entry (bulk), else the
    single event's status."""
    if not bulk:
        return {"status": statuses[0][1] if statuses else "SUCCESS"}
    return {"statuses": [{"entryId": e, "status": s} for e, s in statuses]}


async def _parsed(
    request: Request, envelope: dict[str, Any], model: type[M]
) -> tuple[dict[str, Any], M | None]:
    try:
        return envelope, model.model_validate(envelope.get("data"))
    except pydantic.ValidationError:
        await keep_dead_letter(request.app, str(envelope.get("topic", "")), envelope)
        return envelope, None


class AppTokenGate:
    """Internal routes answer only the sidecar, which presents the app API token; event
    deliveries are counted so the mesh's watchdog can tell a sidecar that stopped delivering
    (messages waiting, app idle, nothing arriving) from a busy one. A plain ASGI middleware:
    Starlette's ``BaseHTTPMiddleware`` costs a task group and a memory stream per request."""

    def __init__(self, app: ASGIApp, owner: FastAPI, token: str, public: tuple[str, ...]) -> None:
        self.app, self.owner, self.public = app, owner, public
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith(self.public):
            given = next((v for k, v in scope["headers"] if k == b"dapr-api-token"), b"")
            if not hmac.compare_digest(given, self.token):
                refusal = JSONResponse(
                    {"detail": "missing or wrong app token (dapr-api-token header)"},
                    status_code=401,
                )
                await refusal(scope, receive, send)
                return
        if not path.startswith(EVENT_PREFIX):
            await self.app(scope, receive, send)
            return
        state = self.owner.state
        state.events_seen += 1
        state.events_in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            state.events_in_flight -= 1


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    public_prefixes: Sequence[str] = (),
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """Build the service's app: its routers plus /healthz, /livez, dead letters and token checks."""
    setup_logging(settings.app_id, settings.log_level)
    setup_tracing(settings.app_id, settings.otlp_endpoint, settings.trace_sampling)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.started = time.monotonic()
        app.state.events_seen = app.state.events_in_flight = 0
        app.state.faults = Faults(settings.fault_injection)
        app.state.dapr = DaprClient(
            settings.dapr_http_url,
            settings.dapr_api_token.get_secret_value(),
            settings.app_id,
            timeout=settings.sidecar_timeout_s,
        )
        if on_startup:
            await on_startup(app)
        log.info("started", extra={"app_port": settings.app_port, "version": __version__})
        try:
            yield
        finally:
            log.info("shutting down")
            if on_shutdown:
                await on_shutdown(app)
            await app.state.dapr.aclose()

    app = FastAPI(title=title, version=__version__, lifespan=lifespan, **fastapi_kwargs)
    instrument(app, settings.app_id)
    public = tuple(ALWAYS_PUBLIC) + tuple(public_prefixes)
    app_token = settings.app_api_token.get_secret_value()

    app.add_middleware(AppTokenGate, owner=app, token=app_token, public=public)

    @app.get("/livez", include_in_schema=False)
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        ok, why = await dapr_client(app).healthy()
        body = {
            "app_id": settings.app_id,
            "status": "ok" if ok else "degraded",
            "app": "ok",
            "sidecar": why,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/internal/info", include_in_schema=False)
    async def info() -> dict[str, Any]:
        return {
            "app_id": settings.app_id,
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - app.state.started, 3),
            "events_seen": app.state.events_seen,
            "events_in_flight": app.state.events_in_flight,
            **getattr(app.state, "info", {}),  # a service's own counters
        }

    if settings.fault_injection:

        @app.post("/internal/faults", include_in_schema=False)
        async def arm_fault(body: Arm) -> dict[str, str]:
            """Arm a crash point for one run or thread id (tests only; see agentia.faults)."""
            try:
                app.state.faults.arm(body.point, body.key)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from None
            return {"armed": body.point, "key": body.key}

    @app.post("/events/dead-letter", include_in_schema=False)
    async def dead_letter(request: Request) -> dict[str, str]:
        envelope = dead_letter_envelope(await request.json())
        await keep_dead_letter(app, str(envelope.get("topic", "unknown")), envelope)
        return {"status": "SUCCESS"}

    @app.exception_handler(DaprError)
    @app.exception_handler(httpx.HTTPError)
    async def sidecar_failed(request: Request, exc: Exception) -> JSONResponse:
        # The sidecar (or what it calls) failed: a retryable 503 with the reason, not a 500.
        reason = str(exc) or type(exc).__name__
        log.warning("sidecar call failed", extra={"path": request.url.path, "reason": reason})
        return JSONResponse(
            {"detail": f"dependency unavailable: {reason}"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    for router in routers:
        app.include_router(router)
    return app
