"""Odd events on ``runs.requested`` (``"module": "agentia_tools.chaos.poison"``): what a
producer that gets the envelope wrong sends, published straight to the broker through the
gateway's sidecar while the load flows.

- ``trace``: a good run request in a CloudEvent whose trace fields are not strings (a
  number, an object): a bad trace is no reason to fail a run; it must run, once;
- ``expired``: a good run request in a CloudEvent that expired before it was sent: it must
  not run, and whoever waits for it must learn that (it ends failed, dead-lettered);
- ``malformed``: bytes that are no CloudEvent (not JSON): they must be set aside, not
  redelivered for ever, and the subscription must go on with the next event.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from agentia import names
from agentia.contracts import runner as runner_api
from agentia.events import Status
from agentia.paths import agentia_home
from agentia_tools.chaos import injected
from agentia_tools.chaos import load as load_mod
from agentia_tools.chaos.probes import record_report
from agentia_tools.runtime.mesh import sidecar_name
from agentia_tools.runtime.supervisor import Supervisor

CURRENT: dict[str, str] = {}  # kind -> the run id it carries ("malformed" carries none)
LOG_MARK: dict[str, int] = {}  # agent-runner's sidecar log size when the events went out
# What agent-runner's sidecar logs each time it cannot read an event on the dead-letter
# topic: before the dead-letter subscriptions took raw bytes, malformed bytes were
# redelivered there for ever (about 1,200 times a second).
DLQ_UNREADABLE = "error deserializing cloud event in pubsub pubsub and topic runs.requested.dlq"


def _sidecar_log() -> Path:
    return Supervisor(agentia_home()).log_file(sidecar_name(names.AGENT_RUNNER))


def publish_event(body: bytes, content_type: str, raw: bool = False) -> None:
    base, headers = load_mod.sidecar()
    url = f"{base}/v1.0/publish/pubsub/{names.TOPIC_RUNS_REQUESTED}"
    resp = httpx.post(
        url,
        content=body,
        headers={**headers, "content-type": content_type},
        params={"metadata.rawPayload": "true"} if raw else None,
        timeout=30,
    )
    if resp.status_code != 204:
        raise RuntimeError(f"the broker did not take the odd event: {resp.status_code} {resp.text}")


def cloud_event(run_id: str, **extra: Any) -> bytes:
    data = {"run_id": run_id, "agent_id": "assistant", "input": 'calculator {"expression": "6*7"}'}
    event = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "chaos",
        "type": "RunRequested",
        "datacontenttype": "application/json",
        "data": data,
        **extra,
    }
    return json.dumps(event).encode()


def publish_odd_events() -> str:
    """Publish one event of each odd kind."""
    trace, expired = f"odd-trace-{uuid.uuid4().hex[:8]}", f"odd-expired-{uuid.uuid4().hex[:8]}"
    publish_event(
        cloud_event(trace, traceid=12345, traceparent={"not": "a string"}, tracestate=7),
        "application/cloudevents+json",
    )
    gone = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    publish_event(cloud_event(expired, expiration=gone), "application/cloudevents+json")
    log = _sidecar_log()
    LOG_MARK["size"] = log.stat().st_size if log.exists() else 0
    publish_event(b"\x00 this is not a CloudEvent {", "application/octet-stream", raw=True)
    injected.fault(3)
    CURRENT.clear()
    CURRENT.update(trace=trace, expired=expired, malformed="")
    return f"published 3 odd events ({trace}, {expired}, malformed bytes)"


def ledger_record(run_id: str) -> dict[str, Any]:
    base, headers = load_mod.sidecar()
    url = f"{base}/v1.0/invoke/{names.AGENT_RUNNER}/method/{runner_api.run_path(run_id)}"
    try:
        resp = httpx.get(url, headers=headers, timeout=10)
    except httpx.HTTPError:
        return {}
    return dict(resp.json()) if resp.status_code == 200 else {}


def odd_events_handled(experiment: str, timeout: float = 120) -> dict[str, Any]:
    """The trace one ran once (success), the expired one ended failed without running, and
    the load's runs (checked by ``nothing_lost``) went on past the malformed bytes."""
    deadline = time.monotonic() + timeout
    trace: dict[str, Any] = {}
    expired: dict[str, Any] = {}
    while time.monotonic() < deadline:
        trace, expired = ledger_record(CURRENT["trace"]), ledger_record(CURRENT["expired"])
        if trace.get("status") == Status.SUCCESS and expired.get("status") == Status.ERROR:
            break
        time.sleep(1)
    with _sidecar_log().open("rb") as lines:
        lines.seek(LOG_MARK.get("size", 0))
        looped = sum(1 for line in lines if DLQ_UNREADABLE.encode() in line)
    result = {
        "odd_malformed_redelivered": looped,
        "odd_trace_run": trace.get("status", "missing"),
        "odd_trace_attempts": trace.get("attempt"),
        "odd_expired_run": expired.get("status", "missing"),
        "odd_expired_error": str(expired.get("error", ""))[:120],
        "ok": trace.get("status") == Status.SUCCESS
        and expired.get("status") == Status.ERROR
        and expired.get("output") is None
        and looped == 0,
    }
    record_report(experiment, result)
    return result
