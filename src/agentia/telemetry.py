"""Traces and metrics, the same in every service.

Traces: OpenTelemetry, one trace per run across gateway → broker → agent-runner → MCP tool →
memory. Dapr's sidecars carry W3C trace context through service invocation and in
CloudEvents, and take part in the trace themselves; each app extracts the context from
the requests its sidecar makes to it (FastAPI instrumentation) and injects it into every
call it makes to its sidecar (httpx instrumentation). Spans go over OTLP/HTTP to
``AGENTIA_OTLP_ENDPOINT`` (the mesh's own trace store locally, a collector elsewhere);
without an endpoint they are made, but kept nowhere.

Metrics: Prometheus text format on each app's ``/metrics``, beside Dapr's own metrics on
each sidecar's metrics port.
"""

from __future__ import annotations

import time
from typing import Any, Final

from fastapi import FastAPI, Response
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Attributes that find a run's trace (`agentia trace RUN_ID` searches the first).
RUN_ID: Final = "agentia.run_id"
AGENT_ID: Final = "agentia.agent_id"
THREAD_ID: Final = "agentia.thread_id"
# Probes and scrapes would drown the traces that matter.
QUIET_PATHS: Final = "healthz,livez,metrics,internal/info"

HTTP_REQUESTS = Counter(
    "agentia_http_requests_total",
    "HTTP requests an app answered, by route template and status.",
    ["service", "method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "agentia_http_request_seconds",
    "Time an app took to answer, by route template.",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def tracer_provider(service: str, endpoint: str | None, sampling: float = 1.0) -> TracerProvider:
    """Spans of ``service``, exported to ``endpoint`` when one is set. A trace this process
    starts is kept at the ``sampling`` rate; one it continues follows its caller's decision
    (the gateway, or a sidecar with the same rate, decides once for the whole run)."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(TraceIdRatioBased(sampling)),
    )
    if endpoint:
        exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces", timeout=5)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def setup_tracing(service: str, endpoint: str | None, sampling: float = 1.0) -> None:
    """The process's tracer provider (once): :func:`tracer_provider`."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    trace.set_tracer_provider(tracer_provider(service, endpoint, sampling))
    HTTPXClientInstrumentor().instrument()


def instrument(app: FastAPI, service: str) -> None:
    """Server spans for the app's requests and the HTTP metrics; a public ``/metrics``."""
    # No spans for the ASGI receive/send steps: three spans a request, with nothing to read.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=QUIET_PATHS, exclude_spans=["receive", "send"]
    )

    app.add_middleware(CountRequests, service=service)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class CountRequests:
    """The HTTP metrics, counted when the response starts (a plain ASGI middleware: Starlette's
    ``BaseHTTPMiddleware`` costs a task group and a memory stream per request)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = False

        def observe(status: int) -> None:
            # The router puts the matched route in this same scope.
            template = getattr(scope.get("route"), "path", "unmatched")
            if template != "/metrics":
                labels = (self.service, scope["method"], template)
                HTTP_REQUESTS.labels(*labels, str(status)).inc()
                HTTP_SECONDS.labels(*labels).observe(time.perf_counter() - started)

        async def counted(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                observe(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            if not answered:
                observe(500)


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def tag_current_span(**attributes: Any) -> None:
    """Set attributes (``agentia.*``) on the span of the request being handled."""
    span = trace.get_current_span()
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(f"agentia.{key}", value)


def current_ids() -> tuple[str, str] | None:
    """The current trace and span ids (hex), for logs; None outside a span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
