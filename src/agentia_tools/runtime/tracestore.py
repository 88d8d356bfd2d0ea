"""The local mesh's trace store: an OTLP/HTTP receiver that keeps spans in SQLite.

Every service and every sidecar exports its spans here (OTLP over HTTP, protobuf, the
standard port 4318), so one machine needs no collector, no Jaeger and no container to see
a run's trace: ``agentia trace RUN_ID`` asks ``GET /api/runs/{run_id}`` and prints the
tree. Anyone with their own collector points ``AGENTIA_OTLP_ENDPOINT`` there instead.
Spans older than ``RETENTION_S`` are dropped as new ones arrive, and beyond the newest
``AGENTIA_TRACE_MAX_SPANS`` (a million by default, about 500 MB: a loaded 2-core mesh writes
some 400,000 spans an hour, so a day's retention alone would grow to gigabytes). Run under
the supervisor:

    python -m agentia_tools.runtime.tracestore
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Final

import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from agentia import names
from agentia.paths import agentia_home
from agentia.telemetry import RUN_ID
from agentia_tools.runtime.trace_retention import MAX_SPANS, RETENTION_S, max_spans

PRUNE_EVERY: Final = 500  # exports between two prunes
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS spans (
  trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT, name TEXT NOT NULL,
  service TEXT NOT NULL, kind INTEGER, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
  status INTEGER, attributes TEXT NOT NULL, run_id TEXT,
  PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_run ON spans (run_id);
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns);
"""


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind) if kind else None


def spans_of(request: ExportTraceServiceRequest) -> list[tuple[Any, ...]]:
    """Rows for the spans of one OTLP export."""
    rows = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        service = str(resource.get("service.name", "unknown"))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attrs = {a.key: _value(a.value) for a in span.attributes}
                rows.append(
                    (
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex() or None,
                        span.name,
                        service,
                        span.kind,
                        span.start_time_unix_nano,
                        span.end_time_unix_nano,
                        span.status.code,
                        json.dumps(attrs, default=str),
                        str(attrs[RUN_ID]) if RUN_ID in attrs else None,
                    )
                )
    return rows


class Store:
    """Spans in one SQLite file; writes from the receiver, reads from the query API."""

    def __init__(self, path: Path, max_spans: int = MAX_SPANS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_spans = max_spans
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._writes = 0

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO spans VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows
            )
            self._writes += 1
            if self._writes % PRUNE_EVERY == 0:
                self._prune()

    def _prune(self) -> None:
        """Drop spans past the retention, then all but the newest ``max_spans`` written
        (rowids grow with every write, so the newest are the highest: no count needed)."""
        cutoff = (time.time() - RETENTION_S) * 1e9
        self._db.execute("DELETE FROM spans WHERE start_ns < ?", (cutoff,))
        top = self._db.execute("SELECT max(rowid) FROM spans").fetchone()[0]
        if top is not None and top > self.max_spans:
            self._db.execute("DELETE FROM spans WHERE rowid <= ?", (top - self.max_spans,))

    def run(self, run_id: str) -> list[dict[str, Any]]:
        """Every span of every trace in which a span names ``run_id``."""
        with self._lock:
            traces = [
                r[0]
                for r in self._db.execute(
                    "SELECT DISTINCT trace_id FROM spans WHERE run_id = ?", (run_id,)
                )
            ]
            if not traces:
                return []
            marks = ",".join("?" * len(traces))
            cur = self._db.execute(
                f"SELECT * FROM spans WHERE trace_id IN ({marks}) ORDER BY start_ns",  # noqa: S608
                traces,
            )
            cols = [c[0] for c in cur.description]
            found = [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
        for span in found:
            span["attributes"] = json.loads(span["attributes"])
        return found


def create_app(store: Store) -> FastAPI:
    app = FastAPI(title="Agentia trace store", docs_url=None, redoc_url=None)

    @app.post("/v1/traces")
    async def receive(request: Request) -> Response:
        if "protobuf" not in request.headers.get("content-type", ""):
            raise HTTPException(415, "send OTLP/HTTP as application/x-protobuf")
        export = ExportTraceServiceRequest()
        try:
            export.ParseFromString(await request.body())
        except DecodeError:
            raise HTTPException(400, "not an OTLP ExportTraceServiceRequest") from None
        store.add(spans_of(export))
        # An empty ExportTraceServiceResponse: full success.
        return Response(b"", media_type="application/x-protobuf")

    @app.get("/api/runs/{run_id}")
    async def run(run_id: str) -> dict[str, Any]:
        return {"run_id": run_id, "spans": store.run(run_id)}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    home = Path(os.environ.get("AGENTIA_HOME") or agentia_home())
    store = Store(home / "data" / "traces.db", max_spans(os.environ))
    uvicorn.run(
        create_app(store),
        host="127.0.0.1",
        port=names.TRACESTORE_PORT,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
