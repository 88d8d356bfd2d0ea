"""A run's events as the Agent Protocol's server-sent events, per stream mode. No Dapr here.

Every frame carries the run event's ``seq`` as its SSE id, so a client that reconnects with
``Last-Event-ID`` gets exactly what it missed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from agentia.events import FINAL_KINDS, Kind

__all__ = ["FINAL_KINDS", "InOrder", "StreamState", "sse"]
RAW_MODES = ("events", "debug", "custom")


def sse(event: str, data: Any, event_id: str | None = None) -> str:
    lines = [f"event: {event}", f"data: {json.dumps(data, default=str)}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    return "\n".join(lines) + "\n\n"


class InOrder:
    """Hands on a run's logged events in ``seq`` order from 0, each once.

    Events are numbered by their position in the run, whatever attempt sent them, and are
    logged concurrently: a gap is an event still on its way. It is held ``grace_s``, then
    passed over (a stream never stalls for good on one lost event)."""

    def __init__(self, grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_s, self.clock = grace_s, clock
        self.sent = -1  # the last seq handed on
        self.gap_since = 0.0  # when the current gap was first seen (0: none)

    def take(self, events: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The events of ``events`` (read in seq order) that come next; stops at a gap still
        within its grace. Safe to leave early: what was handed on is counted as sent."""
        for event in events:
            seq = int(event["seq"])
            if seq <= self.sent:
                continue
            if seq != self.sent + 1:
                now = self.clock()
                self.gap_since = self.gap_since or now
                if now - self.gap_since < self.grace_s:
                    return
            self.gap_since, self.sent = 0.0, seq
            yield event


class StreamState:
    """Turns one run's events, in order, into SSE frames for the requested modes."""

    def __init__(self, run_id: str, modes: list[str], messages: list[dict[str, Any]]) -> None:
        self.run_id, self.modes = run_id, set(modes)
        self.messages = list(messages)
        self.agent = ""

    def _id(self, seq: str) -> str:
        return f"{self.run_id}-{seq}"

    def _message_frames(self, msg: dict[str, Any], seq: str) -> list[str]:
        self.messages.append(msg)
        frames = []
        if "values" in self.modes:
            frames.append(sse("values", {"messages": self.messages}, seq))
        if "updates" in self.modes:
            frames.append(sse("updates", {self.agent or "agent": {"messages": [msg]}}, seq))
        return frames

    def frames(self, event: dict[str, Any]) -> list[str]:
        kind, data, seq = event["kind"], event.get("data") or {}, str(event["seq"])
        out = [sse(mode, event, seq) for mode in RAW_MODES if mode in self.modes]
        if kind == Kind.RUN_STARTED:
            self.agent = str(data.get("agent_id", ""))
        elif kind in (Kind.AGENT_UPDATED, Kind.HANDOFF):
            self.agent = str(data.get("agent") or data.get("to") or self.agent)
        elif kind == Kind.MESSAGE_DELTA and self.modes & {"messages", "messages-tuple"}:
            chunk = {"type": "AIMessageChunk", "content": data.get("delta", ""), "id": self.run_id}
            out.append(sse("messages", [chunk, {"run_id": self.run_id, "agent": self.agent}], seq))
        elif kind == Kind.MESSAGE_COMPLETED:
            msg = {
                "role": "assistant",
                "content": data.get("text", ""),
                "id": f"{self.run_id}-{seq}",
            }
            out += self._message_frames(msg, seq)
        elif kind == Kind.TOOL_CALL:
            call = {
                "name": data.get("name"),
                "args": data.get("arguments"),
                "id": data.get("call_id"),
            }
            msg = {
                "role": "assistant",
                "content": "",
                "id": f"{self.run_id}-{seq}",
                "tool_calls": [call],
            }
            out += self._message_frames(msg, seq)
        elif kind == Kind.TOOL_RESULT:
            output = data.get("output")
            text = output if isinstance(output, str) else json.dumps(output, default=str)
            out += self._message_frames(
                {"role": "tool", "content": text, "id": f"{self.run_id}-{seq}"}, seq
            )
        elif kind == Kind.RUN_FAILED:
            out.append(
                sse("error", {"error": "RunError", "message": data.get("error") or "failed"}, seq)
            )
        return out
