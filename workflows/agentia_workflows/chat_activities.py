"""Activities of the ChatAgent workflow: the transcript lives outside the history.

No Dapr here: the worker passes a :class:`Transcripts` (the memory service's threads). Each
step first cuts the thread back to the item count the workflow expects, so a step retried
after it appended (but before its result was recorded) appends nothing twice; a recorded step
returns its record. The history gets item counts, hashes and previews, never the payloads.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

from agentia.events import Kind, Status
from agentia_workflows.activities import AgentActivities, model_step_record, step_key
from agentia_workflows.contracts import (
    ChatToolsInput,
    ChatToolsOutput,
    ChatTurnInput,
    ChatTurnOutput,
    ToolCallInput,
)

PREVIEW = 200


class Transcripts(Protocol):
    """Conversation threads, by id."""

    async def latest(self, thread_id: str, limit: int) -> list[dict[str, Any]]: ...

    async def cut(self, thread_id: str, count: int) -> None:
        """Keep the first ``count`` items (creating the thread when it does not exist)."""
        ...

    async def append(self, thread_id: str, items: list[dict[str, Any]]) -> int:
        """Append; returns the item count after."""
        ...


def digest(items: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()


def window(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start the model's view at a user turn: a tool output without its call is refused by
    real models, so a window that cuts between them drops the orphans."""
    for i, item in enumerate(items):
        if item.get("role") == "user":
            return items[i:]
    return items


class RunEvents(Protocol):
    """Where a streamed message's events go (``runs.events``, which any gateway replica
    turns into a resumable SSE stream)."""

    async def publish(
        self,
        run_id: str,
        seq: int,
        kind: str,
        status: str,
        data: dict[str, Any],
        thread_id: str | None = None,
    ) -> None: ...


class Emitter:
    """Numbers one step's events from ``seq_start``; a retried step numbers them the same
    way, so the log (which keeps the first event per seq) shows each once."""

    def __init__(
        self, events: RunEvents, run_id: str | None, seq_start: int, thread_id: str | None
    ) -> None:
        self.events, self.run_id, self.seq = events, run_id, seq_start
        self.thread_id = thread_id
        self.count = 0

    async def __call__(self, kind: str, data: dict[str, Any], status: str = Status.RUNNING) -> None:
        if self.run_id is None:
            return
        await self.events.publish(self.run_id, self.seq, kind, status, data, self.thread_id)
        self.seq += 1
        self.count += 1


class ChatActivities:
    def __init__(self, agent: AgentActivities, transcripts: Transcripts, events: RunEvents) -> None:
        self.agent, self.transcripts, self.events = agent, transcripts, events

    async def chat_turn(self, inp: ChatTurnInput) -> ChatTurnOutput:
        key = step_key(inp.instance_id, inp.step)
        record = await self.agent.ledger.get(key)
        if record and record.get("done"):
            await self.agent.report(key, inp.instance_id, record)
            return ChatTurnOutput.model_validate(record["result"])
        claim_check = inp.transcript is None
        if claim_check:
            await self.transcripts.cut(inp.thread_id, inp.item_count)
            count = await self.transcripts.append(inp.thread_id, inp.new_items)
            seen = window(await self.transcripts.latest(inp.thread_id, inp.context_items))
        else:
            seen = [*(inp.transcript or []), *inp.new_items]
        emit = Emitter(self.events, inp.stream_id, inp.seq_start, inp.thread_id)
        if inp.seq_start == 0:
            await emit(Kind.RUN_STARTED, {"agent_id": inp.agent_id})

        async def delta(text: str) -> None:
            await emit(Kind.MESSAGE_DELTA, {"delta": text})

        calls, text, produced, used = await self.agent.ask_streaming(inp.agent_id, seen, delta)
        for call in calls:
            await emit(
                Kind.TOOL_CALL,
                {"name": call.name, "arguments": call.arguments, "call_id": call.call_id},
            )
        if not calls:
            await emit(Kind.MESSAGE_COMPLETED, {"text": text or ""})
            await emit(Kind.RUN_COMPLETED, {"output": text or ""}, status=Status.SUCCESS)
        if claim_check:
            count = await self.transcripts.append(inp.thread_id, produced)
        else:
            count = inp.item_count + len(inp.new_items) + len(produced)
        result = ChatTurnOutput(
            item_count=count,
            sha256=digest(inp.new_items + produced),
            tool_calls=calls,
            preview=(text or "")[:PREVIEW],
            final=not calls,
            items=None if claim_check else produced,
            events=emit.count,
        )
        record = model_step_record(
            inp.agent_id, result, self.agent.turn_usage(key, inp.agent_id, used)
        )
        await self.agent.record(key, record)
        await self.agent.report(key, inp.instance_id, record)
        return result

    async def chat_tools(self, inp: ChatToolsInput) -> ChatToolsOutput:
        outputs, executions = [], []
        emit = Emitter(self.events, inp.stream_id, inp.seq_start, inp.thread_id)
        for i, call in enumerate(inp.calls):
            # Each call is its own ledger step: a retry replays recorded outputs.
            out = await self.agent.tool_call(
                ToolCallInput(
                    instance_id=inp.instance_id, step=inp.step + i, agent_id=inp.agent_id, call=call
                )
            )
            outputs.append(
                {"type": "function_call_output", "call_id": call.call_id, "output": out.output}
            )
            executions.append(out.executions)
            await emit(
                Kind.TOOL_RESULT, {"name": call.name, "output": out.output, "call_id": call.call_id}
            )
        count = inp.item_count + len(outputs)
        if inp.claim_check:
            await self.transcripts.cut(inp.thread_id, inp.item_count)
            count = await self.transcripts.append(inp.thread_id, outputs)
        return ChatToolsOutput(
            item_count=count,
            sha256=digest(outputs),
            executions=executions,
            items=None if inp.claim_check else outputs,
            events=emit.count,
        )
