"""The trace store's OTLP decoding and queries, and the CLI's tree, on spans made by the
real OpenTelemetry SDK and encoded as its OTLP exporter encodes them."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentia.cli.trace import build_tree
from agentia.runtime.tracestore import Store, create_app
from agentia.telemetry import RUN_ID


def _spans(service: str, run_id: str) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("POST /runs"),
        tracer.start_as_current_span("run assistant", attributes={RUN_ID: run_id}),
        tracer.start_as_current_span("function calculator"),
    ):
        pass
    with tracer.start_as_current_span("unrelated"):
        pass
    return exporter


def test_the_store_keeps_otlp_spans_and_finds_a_runs_whole_trace(tmp_path: Path) -> None:
    exporter = _spans("agent-runner", "r-1")
    body = encode_spans(exporter.get_finished_spans()).SerializeToString()
    client = TestClient(create_app(Store(tmp_path / "traces.db")))
    resp = client.post(
        "/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}
    )
    assert resp.status_code == 200
    found = client.get("/api/runs/r-1").json()["spans"]
    assert sorted(s["name"] for s in found) == [
        "POST /runs",
        "function calculator",
        "run assistant",
    ]
    assert {s["service"] for s in found} == {"agent-runner"}
    assert client.get("/api/runs/nope").json()["spans"] == []
    trees = build_tree(found)
    assert len(trees) == 1 and "POST /runs" in str(trees[0].label)
    assert "run assistant" in str(trees[0].children[0].label)
    assert "function calculator" in str(trees[0].children[0].children[0].label)


def test_the_store_refuses_what_is_not_otlp(tmp_path: Path) -> None:
    client = TestClient(create_app(Store(tmp_path / "traces.db")))
    bad = client.post(
        "/v1/traces", content=b"\xff\xfe", headers={"content-type": "application/x-protobuf"}
    )
    assert bad.status_code == 400
    assert client.post("/v1/traces", json={"resourceSpans": []}).status_code == 415
