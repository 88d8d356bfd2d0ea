"""The ChatAgent workflow: a conversation that can last for months in a bounded history.

Workflow code only (deterministic; no I/O): the activities in ``chat_activities`` keep the
transcript in a memory-service thread (claim check), and the history holds item counts,
hashes and previews. Every ``generation`` messages the instance continues as new with a
handful of counters, keeping events that arrived meanwhile, so its history never grows past
one generation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from datetime import timedelta
from typing import Any, Literal

from dapr.ext.workflow import DaprWorkflowContext

from agentia_workflows.contracts import (
    CHAT_TOOLS,
    CHAT_TURN,
    MESSAGE_EVENT,
    ChatAgentInput,
    ChatAgentOutput,
    ChatToolsInput,
    ChatToolsOutput,
    ChatTurnInput,
    ChatTurnOutput,
)
from agentia_workflows.workflows import ACTIVITY_RETRY

Steps = Generator[Any, Any, Any]
MESSAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _status(ctx: DaprWorkflowContext, phase: str, inp: ChatAgentInput, **more: Any) -> None:
    fields = {"messages_done": inp.messages_done, "item_count": inp.item_count, **more}
    ctx.set_custom_status(json.dumps({"phase": phase, **fields}))


def _text_of(raw: Any) -> tuple[str, str | None] | None:
    """(text, client's message id) of a ``message`` event; None for an end event."""
    if isinstance(raw, dict):
        if raw.get("end"):
            return None
        given = raw.get("id")
        ok = isinstance(given, str) and MESSAGE_ID.match(given)
        return str(raw.get("text", "")), given if ok else None
    return (str(raw) if raw is not None else ""), None


def stream_id(instance_id: str, message_id: str) -> str:
    """The run id a message's events are published under: the gateway streams it at
    ``/workflows/{instance}/messages/{message_id}/stream``."""
    return f"{instance_id}.{message_id}"


def chat_agent(ctx: DaprWorkflowContext, inp: ChatAgentInput) -> Steps:
    """Wait for a message, answer it (model turns and tool calls), repeat."""
    st = inp.model_copy()
    thread = st.thread_id or ctx.instance_id
    for _ in range(st.generation):
        _status(ctx, "waiting", st, last_answer=st.last_answer)
        try:
            raw = yield ctx.wait_for_external_event(
                MESSAGE_EVENT, timeout=timedelta(seconds=st.idle_timeout_s)
            )
        except TimeoutError:
            return _ended(st, thread, "idle")
        got = _text_of(raw)
        if got is None:
            return _ended(st, thread, "end")
        text, message_id = got
        sid = stream_id(ctx.instance_id, message_id or f"m{st.messages_done + 1}")
        _status(ctx, "answering", st, stream=sid)
        yield from _answer(ctx, st, thread, text, sid)
        st.messages_done += 1
    _status(ctx, "continuing", st)
    ctx.continue_as_new(st, save_events=True)
    return None


def _answer(
    ctx: DaprWorkflowContext, st: ChatAgentInput, thread: str, text: str, sid: str
) -> Steps:
    new_items: list[dict[str, Any]] = [{"role": "user", "content": text}]
    seq = 0
    for _turn in range(st.max_turns):
        st.step += 1
        turn = ChatTurnOutput.model_validate(
            (
                yield ctx.call_activity(
                    CHAT_TURN,
                    input=ChatTurnInput(
                        instance_id=ctx.instance_id,
                        step=st.step,
                        agent_id=st.agent_id,
                        thread_id=thread,
                        item_count=st.item_count,
                        new_items=new_items,
                        context_items=st.context_items,
                        transcript=None if st.claim_check else st.transcript,
                        stream_id=sid,
                        seq_start=seq,
                    ),
                    retry_policy=ACTIVITY_RETRY,
                )
            )
        )
        if not st.claim_check:
            st.transcript = [*st.transcript, *new_items, *(turn.items or [])]
        st.item_count = turn.item_count
        seq += turn.events
        if turn.final:
            st.last_answer = turn.preview
            return
        first = st.step + 1
        st.step += len(turn.tool_calls)
        tools = ChatToolsOutput.model_validate(
            (
                yield ctx.call_activity(
                    CHAT_TOOLS,
                    input=ChatToolsInput(
                        instance_id=ctx.instance_id,
                        step=first,
                        agent_id=st.agent_id,
                        thread_id=thread,
                        item_count=st.item_count,
                        calls=turn.tool_calls,
                        claim_check=st.claim_check,
                        stream_id=sid,
                        seq_start=seq,
                    ),
                    retry_policy=ACTIVITY_RETRY,
                )
            )
        )
        st.item_count = tools.item_count
        seq += tools.events
        new_items = [] if st.claim_check else list(tools.items or [])
    st.last_answer = ""


def _ended(st: ChatAgentInput, thread: str, why: Literal["end", "idle"]) -> ChatAgentOutput:
    return ChatAgentOutput(
        messages_done=st.messages_done,
        last_answer=st.last_answer,
        thread_id=thread,
        ended=why,
    )
