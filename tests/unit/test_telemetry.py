"""The trace store's OTLP decoding and queries, and the CLI's tree, on spans made by the
real OpenTelemetry SDK and encoded as its OTLP exporter encodes them; the sampling setting."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from agentia import names
from agentia.telemetry import RUN_ID, tracer_provider
from agentia_tools.cli.trace import build_tree
from agentia_tools.runtime import mesh, trace_retention, tracestore
from agentia_tools.runtime.tracestore import Store, create_app


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


def test_the_store_keeps_the_newest_spans_up_to_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracestore, "PRUNE_EVERY", 1)
    store = Store(tmp_path / "traces.db", max_spans=1000)
    now = time.time_ns()
    for batch in range(5):  # 5 exports of 400 spans: 2000 written, the newest 1000 kept
        store.add(
            [
                (f"t{batch}", f"s{i}", None, "n", "svc", 1, now, now, 0, "{}", f"r{batch}")
                for i in range(400)
            ]
        )
    runs_kept = {r: len(store.run(f"r{r}")) for r in range(5)}
    assert runs_kept == {0: 0, 1: 0, 2: 200, 3: 400, 4: 400}
    old = now - int((tracestore.RETENTION_S + 60) * 1e9)  # past the retention: dropped
    store.add([("t9", "s0", None, "n", "svc", 1, old, old, 0, "{}", "r9")])
    assert store.run("r9") == [] and len(store.run("r4")) == 400


@pytest.mark.parametrize("raw", ["12x", "-5", "999", ""])
def test_a_bad_span_limit_is_named(raw: str) -> None:
    with pytest.raises(ValueError, match="AGENTIA_TRACE_MAX_SPANS"):
        trace_retention.max_spans({"AGENTIA_TRACE_MAX_SPANS": raw})
    assert trace_retention.max_spans({}) == trace_retention.MAX_SPANS
    assert trace_retention.max_spans({"AGENTIA_TRACE_MAX_SPANS": " 5000 "}) == 5000


def test_the_store_refuses_what_is_not_otlp(tmp_path: Path) -> None:
    client = TestClient(create_app(Store(tmp_path / "traces.db")))
    bad = client.post(
        "/v1/traces", content=b"\xff\xfe", headers={"content-type": "application/x-protobuf"}
    )
    assert bad.status_code == 400
    assert client.post("/v1/traces", json={"resourceSpans": []}).status_code == 415


def test_sampling_keeps_new_traces_at_its_rate_and_follows_a_traced_caller() -> None:
    exporter = InMemorySpanExporter()
    provider = tracer_provider("gateway", None, sampling=0.0)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for _ in range(20):
        with tracer.start_as_current_span("POST /runs"):
            pass
    assert exporter.get_finished_spans() == ()
    # A caller that traced the run (its sidecar's traceparent says sampled) is followed.
    traced = SpanContext(
        trace_id=0x1F, span_id=0x2F, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    with tracer.start_as_current_span(
        "POST /events/runs-requested", context=set_span_in_context(NonRecordingSpan(traced))
    ):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["POST /events/runs-requested"]
    everything = InMemorySpanExporter()
    full = tracer_provider("gateway", None)
    full.add_span_processor(SimpleSpanProcessor(everything))
    with full.get_tracer("test").start_as_current_span("POST /runs"):
        pass
    assert len(everything.get_finished_spans()) == 1


@pytest.mark.parametrize("raw", ["1.5", "-0.1", "half"])
def test_a_bad_sampling_rate_is_refused_naming_the_variable(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(names.TRACE_SAMPLING_ENV, raw)
    with pytest.raises(ValueError, match=names.TRACE_SAMPLING_ENV):
        mesh.trace_sampling()


def test_the_sampling_rate_reaches_the_apps_and_their_sidecars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(names.TRACE_SAMPLING_ENV, "0.25")
    config = yaml.safe_load(mesh.app_configuration_file(tmp_path, names.GATEWAY).read_text())
    assert config["spec"]["tracing"]["samplingRate"] == "0.25"
    env = mesh.app_environment(
        names.GATEWAY, names.PORTS[names.GATEWAY], mesh.Tokens("a", "b", "c")
    )
    assert env[names.TRACE_SAMPLING_ENV] == "0.25"
    monkeypatch.delenv(names.TRACE_SAMPLING_ENV)
    assert mesh.trace_sampling() == 1.0
