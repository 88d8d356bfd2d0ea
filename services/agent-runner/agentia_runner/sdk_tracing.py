"""The Agents SDK's own spans (agent, model call, tool call, handoff, guardrail) as
OpenTelemetry spans, in the trace of the run that made them.

The SDK traces runs itself and, by default, uploads them to OpenAI. Agentia replaces its
processors with this bridge: each SDK span becomes an OTel span whose parent is the SDK
span's parent, or, for the outermost one, whatever span is current when it starts (the
run's), so the SDK's tree hangs under the run in the mesh's trace. Nothing leaves the
process but through the OTel exporter.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any, Final

from agents.tracing import Span, Trace, TracingProcessor, set_trace_processors
from opentelemetry import context as otel_context
from opentelemetry import trace

from agentia_runner import metrics

# What the SDK's exported span data may carry that is worth a look, not the payloads:
# model inputs and outputs stay out of the trace (they are in the run's events).
KEPT: Final = ("type", "name", "model", "usage", "from_agent", "to_agent", "triggered", "server")
MAX_ATTR: Final = 500


def _attributes(data: dict[str, Any] | None) -> dict[str, str | int | float | bool]:
    found: dict[str, str | int | float | bool] = {}
    for key in KEPT:
        value = (data or {}).get(key)
        if value is None:
            continue
        if isinstance(value, str | int | float | bool):
            found[f"agents.{key}"] = value if not isinstance(value, str) else value[:MAX_ATTR]
        else:
            found[f"agents.{key}"] = json.dumps(value, default=str)[:MAX_ATTR]
    return found


def _seconds(span: Span[Any]) -> float | None:
    if not (span.started_at and span.ended_at):
        return None
    started, ended = datetime.fromisoformat(span.started_at), datetime.fromisoformat(span.ended_at)
    return max(0.0, (ended - started).total_seconds())


def _observe(span: Span[Any], data: dict[str, Any]) -> None:
    """Tool and model call latencies, from the spans that time them."""
    took = _seconds(span)
    if took is None:
        return
    if data.get("type") == "function":
        metrics.TOOL_SECONDS.labels(str(data.get("name", "unknown"))).observe(took)
    elif data.get("type") in ("generation", "response"):
        metrics.MODEL_SECONDS.observe(took)


def _name(span: Span[Any]) -> str:
    data = span.export() or {}
    kind = str((data.get("span_data") or {}).get("type", "span"))
    label = (data.get("span_data") or {}).get("name")
    return f"{kind} {label}" if label else kind


class OtelBridge(TracingProcessor):
    """Start an OTel span when an SDK span starts, end it when it ends."""

    def __init__(self) -> None:
        self._tracer = trace.get_tracer("agents-sdk")
        self._open: dict[str, trace.Span] = {}
        self._lock = threading.Lock()

    def on_trace_start(self, trace_: Trace) -> None:
        return None

    def on_trace_end(self, trace_: Trace) -> None:
        return None

    def on_span_start(self, span: Span[Any]) -> None:
        with self._lock:
            parent = self._open.get(span.parent_id or "")
        ctx = (
            trace.set_span_in_context(parent) if parent is not None else otel_context.get_current()
        )
        otel_span = self._tracer.start_span(_name(span), context=ctx)
        with self._lock:
            self._open[span.span_id] = otel_span

    def on_span_end(self, span: Span[Any]) -> None:
        with self._lock:
            otel_span = self._open.pop(span.span_id, None)
        if otel_span is None:
            return
        exported = span.export() or {}
        data = exported.get("span_data") or {}
        otel_span.set_attributes(_attributes(data))
        _observe(span, data)
        if span.error:
            otel_span.set_status(trace.Status(trace.StatusCode.ERROR, str(span.error)[:MAX_ATTR]))
        otel_span.end()

    def shutdown(self) -> None:
        with self._lock:
            for otel_span in self._open.values():
                otel_span.end()
            self._open.clear()

    def force_flush(self) -> None:
        return None


def install() -> None:
    """Route the SDK's spans to OTel only (never to OpenAI's trace backend)."""
    set_trace_processors([OtelBridge()])
