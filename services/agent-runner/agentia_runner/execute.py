"""Run one agent with the Agents SDK's own loop and report what happens, step by step.

No Dapr here: the caller passes ``emit`` (where events go) and ``cancelled`` (checked
between steps); the mesh wiring lives in ``handlers.py``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, RunConfig, Runner, Session
from agents.exceptions import (
    AgentsException,
    InputGuardrailTripwireTriggered,
    MaxTurnsExceeded,
    OutputGuardrailTripwireTriggered,
)
from agents.items import ItemHelpers, MessageOutputItem

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


class RunCancelled(Exception):
    """The run was cancelled between two steps."""


@dataclass
class Outcome:
    """How a run ended."""

    status: str  # success | error | interrupted
    output: Any = None
    error: str | None = None
    last_agent: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


async def execute(
    agent: Agent[Any],
    run_input: str | list[Any],
    run_config: RunConfig,
    emit: Emit,
    cancelled: Callable[[], Awaitable[bool]] | None = None,
    max_turns: int = 10,
    session: Session | None = None,
) -> Outcome:
    """Stream the run, emitting message deltas, tool calls/results and handoffs.

    With a ``session`` the SDK reads the conversation so far from it and appends the new
    items to it (the memory service, for runs on a thread)."""
    result = Runner.run_streamed(
        agent, run_input, run_config=run_config, max_turns=max_turns, session=session
    )
    try:
        async for ev in result.stream_events():
            if ev.type == "raw_response_event":
                if ev.data.type == "response.output_text.delta":
                    await emit("message.delta", {"delta": ev.data.delta})
                continue
            if ev.type == "agent_updated_stream_event":
                await emit("agent.updated", {"agent": ev.new_agent.name})
                continue
            item = ev.item
            if ev.name == "tool_called":
                raw = item.raw_item
                await emit(
                    "tool.call",
                    {
                        "name": getattr(raw, "name", None),
                        "arguments": getattr(raw, "arguments", None),
                        "call_id": getattr(raw, "call_id", None),
                    },
                )
            elif ev.name == "tool_output":
                await emit("tool.result", {"output": _jsonable(getattr(item, "output", None))})
            elif ev.name == "handoff_occured":  # sic: the SDK's event name
                await emit("handoff", {"to": item.target_agent.name})
            elif ev.name == "message_output_created" and isinstance(item, MessageOutputItem):
                await emit("message.completed", {"text": ItemHelpers.text_message_output(item)})
            if cancelled is not None and await cancelled():
                result.cancel()
                raise RunCancelled()
    except RunCancelled:
        return Outcome("interrupted", error="cancelled", last_agent=result.last_agent.name)
    except InputGuardrailTripwireTriggered as exc:
        info = exc.guardrail_result.output.output_info
        return Outcome("error", error=f"input guardrail tripped: {info}")
    except OutputGuardrailTripwireTriggered as exc:
        info = exc.guardrail_result.output.output_info
        return Outcome("error", error=f"output guardrail tripped: {info}")
    except MaxTurnsExceeded:
        return Outcome("error", error=f"more than {max_turns} turns")
    except AgentsException as exc:
        return Outcome("error", error=f"{type(exc).__name__}: {exc}")
    usage = result.context_wrapper.usage
    output = result.final_output
    if hasattr(output, "model_dump"):
        output = output.model_dump(mode="json")
    return Outcome(
        "success",
        output=_jsonable(output),
        last_agent=result.last_agent.name,
        usage={
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "requests": usage.requests,
        },
    )
