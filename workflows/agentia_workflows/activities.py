"""The activity code: model turns and tool calls, each recorded in a step ledger.

No Dapr here: the worker passes a :class:`Catalog` (agent definitions and models) and a
:class:`StepLedger` (durable records). The workflow engine runs an activity at least once;
the ledger turns that into once in effect: a step whose result is recorded returns the
record instead of running again, and each record counts how many times the step's body
actually started (so a test, or an operator, can see a repeated side effect).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from agents import Agent, FunctionTool, Model, ModelSettings
from agents.models.interface import ModelTracing
from agents.tool_context import ToolContext
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseTextDeltaEvent,
)

from agentia_workflows.contracts import (
    ModelTurnInput,
    ModelTurnOutput,
    ToolCallInput,
    ToolCallOutput,
    ToolCallRequest,
)

Delta = Callable[[str], Awaitable[None]]


class Catalog(Protocol):
    """Where agents and their models come from (agent-runner's registry)."""

    def agent(self, agent_id: str) -> Agent[Any]: ...

    def model(self, name: str) -> Model: ...


class UsageReports(Protocol):
    """Where a model turn's usage goes (the gateway counts it against the workflow's key).
    Reported again when a recorded turn is asked for again: the step key makes it once."""

    async def report(
        self, usage_id: str, instance_id: str, model: str, usage: dict[str, int]
    ) -> None: ...


log = logging.getLogger("agentia.workflows")
# How long a finished step's record is retried against a store that refuses it (PostgreSQL
# down, its disk full) before the activity fails and the engine runs the step again.
RECORD_DEADLINE_S = 600.0


class StepLedger(Protocol):
    """Durable records of steps, by key."""

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def save(self, key: str, value: dict[str, Any]) -> None: ...


def step_key(instance_id: str, step: int) -> str:
    return f"wfstep:{instance_id}:{step}"


def usage_of(usage: Any) -> dict[str, int]:
    """A model response's usage as counts (one request, whatever the response reported)."""
    return {
        "input_tokens": int(getattr(usage, "input_tokens", 0) or 0),
        "output_tokens": int(getattr(usage, "output_tokens", 0) or 0),
        "requests": 1,
    }


def model_step_record(agent_id: str, result: Any, usage: dict[str, Any]) -> dict[str, Any]:
    """The step record of a finished model turn: its output, and the usage it reports once."""
    return {
        "kind": "model",
        "name": agent_id,
        "done": True,
        "executions": 1,
        "result": result.model_dump(mode="json"),
        "usage": usage,
    }


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json", exclude_none=True)
    return json.loads(json.dumps(value, default=str))


def _text(output: list[Any]) -> str:
    parts = [
        getattr(part, "text", "")
        for item in output
        if isinstance(item, ResponseOutputMessage)
        for part in item.content
    ]
    return "".join(parts)


class AgentActivities:
    """Model turns and tool calls of the durable agent loop."""

    def __init__(
        self,
        catalog: Catalog,
        ledger: StepLedger,
        usage: UsageReports | None = None,
        record_deadline_s: float = RECORD_DEADLINE_S,
    ) -> None:
        self.catalog = catalog
        self.ledger = ledger
        self.usage = usage
        self.record_deadline_s = record_deadline_s

    async def record(self, key: str, value: dict[str, Any]) -> None:
        """Save the record of a step whose body has run, retried until the store takes it
        (up to ``record_deadline_s``): an activity failed here is run again, and its body
        with it (a tool's side effect twice, a model turn paid twice)."""
        delay, deadline = 0.5, time.monotonic() + self.record_deadline_s
        while True:
            try:
                await self.ledger.save(key, value)
                return
            except Exception as exc:  # the store's client raises its own types
                if time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "step record not saved yet; retrying, so the step does not run again",
                    extra={"step_key": key, "error": type(exc).__name__},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def turn_usage(self, key: str, agent_id: str, used: dict[str, int]) -> dict[str, Any]:
        """What a turn's ledger record keeps of its usage: the model, the counts, and an id
        of its own (a reused instance id runs its steps again: new ids, counted again)."""
        model = str(self.catalog.agent(agent_id).model or "offline")
        return {"id": f"{key}:{uuid.uuid4().hex[:12]}", "model": model, **used}

    async def report(self, key: str, instance_id: str, record: dict[str, Any]) -> None:
        """Report a recorded turn's usage (records from before usage was kept have none)."""
        used = record.get("usage")
        if self.usage is not None and used:
            counts = {k: int(used.get(k, 0)) for k in ("input_tokens", "output_tokens", "requests")}
            await self.usage.report(str(used["id"]), instance_id, str(used["model"]), counts)

    def _function_tools(self, agent: Agent[Any]) -> list[FunctionTool]:
        # Local function tools only: MCP sessions are not kept across activities yet.
        return [t for t in agent.tools if isinstance(t, FunctionTool)]

    async def ask(
        self, agent_id: str, items: list[dict[str, Any]]
    ) -> tuple[list[ToolCallRequest], str | None, list[dict[str, Any]], dict[str, int]]:
        """One call of the agent's model on ``items``: (tool calls, final text, new items,
        usage)."""
        agent = self.catalog.agent(agent_id)
        model = self.catalog.model(str(agent.model or "offline"))
        instructions = agent.instructions if isinstance(agent.instructions, str) else None
        response = await model.get_response(
            instructions,
            list(items),  # type: ignore[arg-type]  # Responses input items, as JSON
            agent.model_settings or ModelSettings(),
            list(self._function_tools(agent)),
            None,
            [],
            ModelTracing.DISABLED,
            previous_response_id=None,
            conversation_id=None,
            prompt=None,
        )
        calls = [
            ToolCallRequest(call_id=o.call_id, name=o.name, arguments=o.arguments)
            for o in response.output
            if isinstance(o, ResponseFunctionToolCall)
        ]
        produced = [_jsonable(i) for i in response.to_input_items()]
        return calls, None if calls else _text(response.output), produced, usage_of(response.usage)

    async def ask_streaming(
        self, agent_id: str, items: list[dict[str, Any]], on_delta: Delta
    ) -> tuple[list[ToolCallRequest], str | None, list[dict[str, Any]], dict[str, int]]:
        """Like :meth:`ask`, with the model's text deltas passed to ``on_delta`` as they come."""
        agent = self.catalog.agent(agent_id)
        model = self.catalog.model(str(agent.model or "offline"))
        instructions = agent.instructions if isinstance(agent.instructions, str) else None
        final: Response | None = None
        async for event in model.stream_response(
            instructions,
            list(items),  # type: ignore[arg-type]
            agent.model_settings or ModelSettings(),
            list(self._function_tools(agent)),
            None,
            [],
            ModelTracing.DISABLED,
            previous_response_id=None,
            conversation_id=None,
            prompt=None,
        ):
            if isinstance(event, ResponseTextDeltaEvent):
                await on_delta(event.delta)
            elif isinstance(event, ResponseCompletedEvent):
                final = event.response
        if final is None:
            raise RuntimeError(f"the model of '{agent_id}' ended its stream without a response")
        calls = [
            ToolCallRequest(call_id=o.call_id, name=o.name, arguments=o.arguments)
            for o in final.output
            if isinstance(o, ResponseFunctionToolCall)
        ]
        produced = [_jsonable(o) for o in final.output]
        return calls, None if calls else _text(final.output), produced, usage_of(final.usage)

    async def model_turn(self, inp: ModelTurnInput) -> ModelTurnOutput:
        """Ask the agent's model for its next move; a recorded turn is returned as is."""
        key = step_key(inp.instance_id, inp.step)
        record = await self.ledger.get(key)
        if record and record.get("done"):
            await self.report(key, inp.instance_id, record)
            return ModelTurnOutput.model_validate(record["result"])
        calls, text, produced, used = await self.ask(inp.agent_id, list(inp.items))
        result = ModelTurnOutput(items=produced, tool_calls=calls, text=text)
        record = model_step_record(inp.agent_id, result, self.turn_usage(key, inp.agent_id, used))
        await self.record(key, record)
        await self.report(key, inp.instance_id, record)
        return result

    async def tool_call(self, inp: ToolCallInput) -> ToolCallOutput:
        """Run one tool call once in effect: a recorded output is returned, not recomputed."""
        key = step_key(inp.instance_id, inp.step)
        record = await self.ledger.get(key) or {}
        if record.get("done"):
            return ToolCallOutput(
                output=str(record["output"]), executions=int(record["executions"]), replayed=True
            )
        executions = int(record.get("executions", 0)) + 1
        call = inp.call
        base = {"kind": "tool", "name": call.name, "arguments": call.arguments}
        # Counted before the body starts: a crash inside the tool shows up as a second start.
        await self.ledger.save(key, {**base, "executions": executions, "done": False})
        agent = self.catalog.agent(inp.agent_id)
        tool = next((t for t in self._function_tools(agent) if t.name == call.name), None)
        if tool is None:
            output = f"error: agent '{inp.agent_id}' has no tool '{call.name}'"
        else:
            ctx: ToolContext[None] = ToolContext(
                context=None,
                tool_name=call.name,
                tool_call_id=call.call_id,
                tool_arguments=call.arguments,
            )
            output = str(await tool.on_invoke_tool(ctx, call.arguments))
        await self.record(key, {**base, "executions": executions, "done": True, "output": output})
        return ToolCallOutput(output=output, executions=executions, replayed=False)
