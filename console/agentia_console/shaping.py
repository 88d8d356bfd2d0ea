"""The gateway's answers shaped for the page: chat bubbles with their tool calls, workflows
waiting for a decision, a run's trace. Plain data in, plain data out: no Streamlit, no HTTP."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agentia_console.client import SseFrame

ARGS_SHOWN = 120  # characters of a tool call's arguments in its label


@dataclass
class ToolView:
    """A tool call and, once it came back, its result."""

    name: str
    arguments: str = ""
    output: str | None = None
    call_id: str | None = None

    @property
    def label(self) -> str:
        args = self.arguments if len(self.arguments) <= ARGS_SHOWN else self.arguments[:117] + "..."
        result = "…" if self.output is None else self.output
        return f"tool call: {self.name}({args}) → {result}"


@dataclass
class Bubble:
    """One chat message as shown: who, the text, and the tool calls made on the way."""

    role: str
    text: str = ""
    tools: list[ToolView] = field(default_factory=list)


def as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def bubbles(messages: list[dict[str, Any]]) -> list[Bubble]:
    """A thread's messages as bubbles: the assistant's tool calls, their results and its
    answer that follow one user turn go into one assistant bubble."""
    out: list[Bubble] = []
    calls: dict[str, ToolView] = {}

    def assistant() -> Bubble:
        if not out or out[-1].role != "assistant":
            out.append(Bubble("assistant"))
        return out[-1]

    for msg in messages:
        role = str(msg.get("role", "assistant"))
        if role == "tool":
            view = calls.get(str(msg.get("tool_call_id")))
            if view is None:  # a result whose call we did not see: show it on its own
                view = ToolView("tool", call_id=msg.get("tool_call_id"))
                assistant().tools.append(view)
            view.output = as_text(msg.get("content"))
        elif role == "assistant":
            bubble = assistant()
            for call in msg.get("tool_calls") or []:
                view = ToolView(
                    str(call.get("name") or "tool"), as_text(call.get("args")), None, call.get("id")
                )
                bubble.tools.append(view)
                if view.call_id:
                    calls[str(view.call_id)] = view
            text = as_text(msg.get("content"))
            if text:
                bubble.text = f"{bubble.text}\n\n{text}" if bubble.text else text
        else:
            out.append(Bubble(role, as_text(msg.get("content"))))
    return out


@dataclass
class Waiting:
    """A workflow step waiting for a person's decision."""

    tool: str
    arguments: str


def waiting_for_approval(instance: dict[str, Any]) -> Waiting | None:
    """The step an AgentLoop instance waits on (its custom status says so), if any."""
    custom = instance.get("custom_status")
    if instance.get("status") not in ("RUNNING", "PENDING") or not isinstance(custom, dict):
        return None
    if custom.get("phase") != "awaiting_approval":
        return None
    return Waiting(str(custom.get("tool", "?")), as_text(custom.get("arguments")))


def workflow_summary(instance: dict[str, Any]) -> str:
    """One line: what it is and where it stands."""
    status = str(instance.get("status", "?"))
    custom = instance.get("custom_status")
    phase = custom.get("phase") if isinstance(custom, dict) else None
    parts = [str(instance.get("workflow", "?")), status]
    if phase and status not in ("COMPLETED", "FAILED", "TERMINATED"):
        parts.append(str(phase).replace("_", " "))
    created = instance.get("created_at")
    if created:
        parts.append(f"started {str(created)[:19].replace('T', ' ')}")
    return " · ".join(parts)


def workflow_result(instance: dict[str, Any]) -> str | None:
    """The last answer of a finished AgentLoop (or its failure), when there is one."""
    failure = instance.get("failure")
    if isinstance(failure, dict) and failure:
        return f"failed: {failure.get('type')}: {failure.get('message')}"
    output = instance.get("output")
    if isinstance(output, dict) and output.get("outputs"):
        return str(output["outputs"][-1])
    return None if output is None else as_text(output)


def cron_summary(cron: dict[str, Any]) -> str:
    """When it fires and what it runs."""
    if cron.get("schedule"):
        when = f"cron `{cron['schedule']}` ({cron.get('timezone') or 'UTC'})"
    elif cron.get("interval_s"):
        when = f"every {cron['interval_s']} s"
    else:
        when = f"once at {cron.get('at')}"
    payload = cron.get("payload") or {}
    what = f"{cron.get('assistant_id') or '?'} ← {as_text(payload.get('input'))[:80]!r}"
    fired = f"fired {cron.get('runs', 0)} times"
    upcoming = f"next {cron['next_run_date']}" if cron.get("next_run_date") else "no next run"
    return " · ".join([when, what, fired, upcoming])


@dataclass
class TraceRow:
    """One event of a run, as its trace shows it."""

    seq: str
    kind: str
    detail: str


def trace(frames: list[SseFrame]) -> list[TraceRow]:
    """A replayed run stream as its events, in order. Runs streamed with the ``events``
    mode (as the console starts them) have every event; others show what their modes kept."""
    rows: list[TraceRow] = []
    for frame in frames:
        if frame.event == "events" and isinstance(frame.data, dict):
            data = frame.data.get("data") or {}
            rows.append(
                TraceRow(
                    str(frame.data.get("seq", frame.id)), str(frame.data.get("kind")), as_text(data)
                )
            )
        elif frame.event in ("metadata", "error"):
            rows.append(TraceRow(frame.id or "", frame.event, as_text(frame.data)))
    return rows


def has_raw_events(frames: list[SseFrame]) -> bool:
    return any(f.event == "events" for f in frames)
