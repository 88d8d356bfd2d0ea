"""Run one agent with the Agents SDK's own loop and report what happens, step by step.

No Dapr here: the caller passes ``emit`` (where events go) and ``cancelled`` (checked
between steps); the mesh wiring lives in ``handlers.py``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, RunConfig, Runner, RunResultStreaming, Session
from agents.exceptions import (
    AgentsException,
    InputGuardrailTripwireTriggered,
    MaxTurnsExceeded,
    OutputGuardrailTripwireTriggered,
)
from agents.items import ItemHelpers, MessageOutputItem

from agentia.events import Kind, Status
from agentia_runner.deltas import DeltaBatcher

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


class RunCancelled(Exception):
    """The run was cancelled between two steps."""


@dataclass
class Outcome:
    """How a run ended."""

    status: Status  # success, error or interrupted (RUNNER_FINAL)
    output: Any = None
    error: str | None = None
    last_agent: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    # Usage per model (the agent definition's ``model``, e.g. ``offline``), from the model
    # responses as they streamed: a run with handoffs may use several models.
    models: dict[str, dict[str, int]] = field(default_factory=dict)


def model_name(agent: Agent[Any]) -> str:
    """The name of the agent's model as its definition gives it (``offline`` when unset)."""
    model = agent.model
    if model is None:
        return "offline"
    return model if isinstance(model, str) else str(getattr(model, "model", type(model).__name__))


def add_response(models: dict[str, dict[str, int]], model: str, usage: Any) -> None:
    """Count one model response (its ``usage`` may be missing: a request all the same)."""
    row = models.setdefault(model, {"input_tokens": 0, "output_tokens": 0, "requests": 0})
    row["requests"] += 1
    row["input_tokens"] += int(getattr(usage, "input_tokens", 0) or 0)
    row["output_tokens"] += int(getattr(usage, "output_tokens", 0) or 0)


def total(models: dict[str, dict[str, int]]) -> dict[str, int]:
    """The run's usage over all its models."""
    fields = ("input_tokens", "output_tokens", "requests")
    return {f: sum(row[f] for row in models.values()) for f in fields}


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


async def _events(
    result: RunResultStreaming,
    emit: Emit,
    cancelled: Callable[[], Awaitable[bool]] | None,
    models: dict[str, dict[str, int]],
) -> None:
    """Emit the streamed run's events; raises RunCancelled when ``cancelled`` says so."""
    starting: Agent[Any] | None = result.current_agent
    async for ev in result.stream_events():
        if ev.type == "raw_response_event":
            if ev.data.type == "response.output_text.delta":
                await emit(Kind.MESSAGE_DELTA, {"delta": ev.data.delta})
            elif ev.data.type == "response.completed":
                # The response streams while its agent is the current one.
                used = getattr(ev.data.response, "usage", None)
                add_response(models, model_name(result.current_agent), used)
            continue
        if ev.type == "agent_updated_stream_event":
            # The SDK announces the starting agent too: run.started names it already.
            if ev.new_agent is not starting:
                await emit(Kind.AGENT_UPDATED, {"agent": ev.new_agent.name})
            starting = None
            continue
        item = ev.item
        if ev.name == "tool_called":
            raw = item.raw_item
            await emit(
                Kind.TOOL_CALL,
                {
                    "name": getattr(raw, "name", None),
                    "arguments": getattr(raw, "arguments", None),
                    "call_id": getattr(raw, "call_id", None),
                },
            )
        elif ev.name == "tool_output":
            raw = item.raw_item
            call_id = raw.get("call_id") if isinstance(raw, dict) else getattr(raw, "call_id", None)
            output = _jsonable(getattr(item, "output", None))
            await emit(Kind.TOOL_RESULT, {"output": output, "call_id": call_id})
        elif ev.name == "handoff_occured":  # sic: the SDK's event name
            await emit(Kind.HANDOFF, {"to": item.target_agent.name})
        elif ev.name == "message_output_created" and isinstance(item, MessageOutputItem):
            await emit(Kind.MESSAGE_COMPLETED, {"text": ItemHelpers.text_message_output(item)})
        if cancelled is not None and await cancelled():
            result.cancel()
            raise RunCancelled()


async def execute(
    agent: Agent[Any],
    run_input: str | list[Any],
    run_config: RunConfig,
    emit: Emit,
    cancelled: Callable[[], Awaitable[bool]] | None = None,
    max_turns: int = 10,
    session: Session | None = None,
    context: Any = None,
) -> Outcome:
    """Stream the run, emitting message deltas (batched: ``deltas.py``), tool calls and
    results, and handoffs.

    With a ``session`` the SDK reads the conversation so far from it and appends the new
    items to it (the memory service, for runs on a thread). ``context`` is the SDK's run
    context (what tools see)."""
    result = Runner.run_streamed(
        agent,
        run_input,
        context=context,
        run_config=run_config,
        max_turns=max_turns,
        session=session,
    )
    models: dict[str, dict[str, int]] = {}
    batch = DeltaBatcher(emit)

    def ended(status: Status, error: str, last_agent: str | None = None) -> Outcome:
        # Tokens spent before a failure or a cancel were spent all the same.
        usage = total(models) if models else {}
        return Outcome(status, error=error, last_agent=last_agent, usage=usage, models=models)

    failure: Outcome | None = None
    try:
        await _events(result, batch, cancelled, models)
    except RunCancelled:
        failure = ended(Status.INTERRUPTED, "cancelled", result.last_agent.name)
    except InputGuardrailTripwireTriggered as exc:
        info = exc.guardrail_result.output.output_info
        failure = ended(Status.ERROR, f"input guardrail tripped: {info}")
    except OutputGuardrailTripwireTriggered as exc:
        info = exc.guardrail_result.output.output_info
        failure = ended(Status.ERROR, f"output guardrail tripped: {info}")
    except MaxTurnsExceeded:
        failure = ended(Status.ERROR, f"more than {max_turns} turns")
    except AgentsException as exc:
        failure = ended(Status.ERROR, f"{type(exc).__name__}: {exc}")
    except BaseException:
        batch.discard()  # the attempt is abandoned: its next attempt tells the rest
        raise
    await batch.close()
    if failure is not None:
        return failure
    usage = result.context_wrapper.usage
    output = result.final_output
    if hasattr(output, "model_dump"):
        output = output.model_dump(mode="json")
    return Outcome(
        Status.SUCCESS,
        output=_jsonable(output),
        last_agent=result.last_agent.name,
        usage={
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "requests": usage.requests,
        },
        models=models,
    )
