"""The gateway's public HTTP API, as the console uses it. httpx only: no Streamlit here.

Every refusal becomes a :class:`GatewayError` carrying the status and the gateway's own
reason (its ``detail``), so the page can say what went wrong instead of showing a
traceback; an unreachable gateway is one too, with no status.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from agentia.events import FINAL_KIND, Kind

DEFAULT_URL = "http://127.0.0.1:8000"
STREAM_MODES = ["messages-tuple", "events"]
REASONS = {
    400: "bad request",
    401: "not authenticated",
    403: "not allowed",
    404: "not found",
    409: "conflict",
    413: "body too large",
    422: "not valid",
    429: "too many requests",
    503: "unavailable, retry",
}


class GatewayError(Exception):
    """The gateway refused a call, or could not be reached (``status`` is None then)."""

    def __init__(self, status: int | None, detail: str, retry_after: str | None = None) -> None:
        self.status, self.detail, self.retry_after = status, detail, retry_after
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if self.status is None:
            return self.detail
        words = REASONS.get(self.status, "refused")
        text = f"gateway answered {self.status} ({words}): {self.detail}"
        if self.retry_after:
            text += f" (retry after {self.retry_after} s)"
        return text


def error_from(status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
    """A refusal as an error with the gateway's reason (its JSON ``detail``, else the text)."""
    text = body.decode("utf-8", "replace").strip()
    detail: Any = text
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "detail" in parsed:
        detail = parsed["detail"]
    if not isinstance(detail, str):
        detail = json.dumps(detail)
    return GatewayError(status, detail[:1000] or "(no reason given)", headers.get("retry-after"))


@dataclass
class SseFrame:
    """One server-sent event: its name, its JSON data and its id (the run event's seq)."""

    event: str
    data: Any = None
    id: str | None = None


def _frame(fields: dict[str, str], data: list[str]) -> SseFrame:
    raw = "\n".join(data)
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        value = raw
    return SseFrame(fields.get("event", "message"), value, fields.get("id"))


def parse_sse(lines: Iterable[str]) -> Iterator[SseFrame]:
    """Server-sent events from the stream's lines; comments (keep-alives) are skipped."""
    frame: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if not line:
            if frame or data:
                yield _frame(frame, data)
            frame, data = {}, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name in ("event", "id"):
                frame[name] = value
    if frame or data:
        yield _frame(frame, data)


PartKind = Literal["run", "delta", "tool_call", "tool_result", "done", "error"]
FINAL_KINDS = {kind: status for status, kind in FINAL_KIND.items()}


@dataclass
class StreamPart:
    """What a streamed run produced, one piece at a time, as the page shows it."""

    kind: PartKind
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def stream_parts(frames: Iterable[SseFrame]) -> Iterator[StreamPart]:
    """A run's SSE frames (stream modes ``messages-tuple`` and ``events``) as parts: the
    model's text deltas come from ``messages`` frames, tool calls, results and the end of
    the run from the raw ``events``."""
    for frame in frames:
        if frame.event == "metadata" and isinstance(frame.data, dict):
            yield StreamPart("run", str(frame.data.get("run_id", "")), dict(frame.data))
        elif frame.event == "messages" and isinstance(frame.data, list) and frame.data:
            chunk = frame.data[0] if isinstance(frame.data[0], dict) else {}
            yield StreamPart("delta", str(chunk.get("content", "")))
        elif frame.event == "events" and isinstance(frame.data, dict):
            kind, data = frame.data.get("kind"), frame.data.get("data") or {}
            if kind == Kind.TOOL_CALL:
                yield StreamPart("tool_call", str(data.get("name", "")), dict(data))
            elif kind == Kind.TOOL_RESULT:
                output = data.get("output")
                text = output if isinstance(output, str) else json.dumps(output, default=str)
                yield StreamPart("tool_result", text, dict(data))
            elif kind in FINAL_KINDS:
                yield StreamPart("done", FINAL_KINDS[kind], dict(data))
        elif frame.event == "error":
            data = frame.data if isinstance(frame.data, dict) else {"message": str(frame.data)}
            yield StreamPart("error", str(data.get("message", "the run failed")), data)


class GatewayClient:
    """The calls the console makes, each answering JSON or raising :class:`GatewayError`."""

    def __init__(
        self, base_url: str, api_key: str, timeout: float = 30.0, stream_timeout: float = 120.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.stream_timeout = stream_timeout
        self._http = httpx.Client(
            base_url=self.base_url, headers={"x-api-key": api_key}, timeout=timeout
        )

    @classmethod
    def from_env(cls, api_key: str | None = None) -> GatewayClient:
        """The gateway named by ``AGENTIA_GATEWAY_URL`` with ``AGENTIA_API_KEY`` (what
        ``agentia console`` passes to the page), or the key given."""
        url = os.environ.get("AGENTIA_GATEWAY_URL", DEFAULT_URL)
        return cls(url, api_key if api_key is not None else os.environ.get("AGENTIA_API_KEY", ""))

    def close(self) -> None:
        self._http.close()

    def _unreachable(self, exc: httpx.HTTPError) -> GatewayError:
        return GatewayError(
            None, f"gateway at {self.base_url} unreachable ({type(exc).__name__}); is the mesh up?"
        )

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        try:
            resp = self._http.request(method, path, json=body, params=params or None)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if resp.status_code >= 400:
            raise error_from(resp.status_code, resp.headers, resp.content)
        return resp.json() if resp.content else None

    # -- agents and threads ------------------------------------------------------------------

    def agents(self) -> list[dict[str, Any]]:
        return list(self.call("POST", "/agents/search", {"limit": 100}))

    def threads(self, limit: int = 20) -> list[dict[str, Any]]:
        found = list(self.call("POST", "/threads/search", {"limit": limit}))
        return sorted(found, key=lambda t: str(t.get("updated_at", "")), reverse=True)

    def create_thread(self, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(self.call("POST", "/threads", {"metadata": metadata or {}}))

    def thread(self, thread_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/threads/{thread_id}"))

    def thread_runs(self, thread_id: str, limit: int = 20) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/threads/{thread_id}/runs", limit=limit))

    # -- runs ------------------------------------------------------------------------------

    def _stream(self, method: str, path: str, body: Any = None) -> Iterator[SseFrame]:
        try:
            with self._http.stream(method, path, json=body, timeout=self.stream_timeout) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise error_from(resp.status_code, resp.headers, resp.content)
                yield from parse_sse(resp.iter_lines())
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    def stream_run(self, thread_id: str, agent_id: str, text: str) -> Iterator[StreamPart]:
        """Start a run on the thread and yield what it produces as it arrives. The run goes
        on if the page stops reading (``on_disconnect: continue``)."""
        body = {
            "assistant_id": agent_id,
            "input": text,
            "stream_mode": STREAM_MODES,
            "if_not_exists": "create",
            "on_disconnect": "continue",
        }
        yield from stream_parts(self._stream("POST", f"/threads/{thread_id}/runs/stream", body))

    def run_events(self, run_id: str, thread_id: str | None = None) -> list[SseFrame]:
        """A run's stream replayed from its log (the stream modes it was created with)."""
        path = (
            f"/threads/{thread_id}/runs/{run_id}/stream" if thread_id else f"/runs/{run_id}/stream"
        )
        return list(self._stream("GET", path))

    # -- workflows ---------------------------------------------------------------------------

    def workflows(self, page_size: int = 50) -> list[dict[str, Any]]:
        found = self.call("GET", "/workflows", page_size=page_size, details="true")
        instances = list(found.get("instances") or [])
        return sorted(instances, key=lambda w: str(w.get("created_at") or ""), reverse=True)

    def workflow(self, instance_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/workflows/{instance_id}"))

    def start_workflow(self, workflow: str, value: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", "/workflows", {"workflow": workflow, "input": value}))

    def decide(self, instance_id: str, approved: bool, by: str = "console") -> Any:
        """Raise the ``approval`` event a waiting AgentLoop step is waiting for."""
        decision = {"approved": approved, "by": by}
        return self.call("POST", f"/workflows/{instance_id}/events/approval", decision)

    # -- schedules ---------------------------------------------------------------------------

    def crons(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.call("POST", "/runs/crons/search", {"limit": limit}))

    def delete_cron(self, cron_id: str) -> Any:
        return self.call("DELETE", f"/runs/crons/{cron_id}")
