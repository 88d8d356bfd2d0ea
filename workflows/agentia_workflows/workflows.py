"""The workflow (orchestrator) code: deterministic, no I/O, replayed from history.

Everything with an effect is an activity (``activities.py``) called with a retry policy, so
a crash of the worker replays these functions from history and never repeats a completed
step. Custom status is a small JSON object telling operators what an instance waits for.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from dapr.ext.workflow import DaprWorkflowContext, RetryPolicy, when_all

from agentia_workflows.contracts import (
    AGENT_LOOP,
    APPROVAL_EVENT,
    MODEL_TURN,
    TOOL_CALL,
    AgentAnswer,
    AgentLoopInput,
    AgentLoopOutput,
    ApprovalDecision,
    FanOutInput,
    FanOutOutput,
    ModelTurnInput,
    ModelTurnOutput,
    RecurringAgentInput,
    RecurringAgentOutput,
    StepRecord,
    ToolCallInput,
    ToolCallOutput,
    ToolCallRequest,
)

Steps = Generator[Any, Any, Any]

# A model or tool that fails transiently (a restart, a timeout) gets a few more attempts.
ACTIVITY_RETRY = RetryPolicy(
    first_retry_interval=timedelta(seconds=1),
    max_number_of_attempts=4,
    backoff_coefficient=2.0,
    max_retry_interval=timedelta(seconds=15),
)


def _status(ctx: DaprWorkflowContext, phase: str, **fields: Any) -> None:
    ctx.set_custom_status(json.dumps({"phase": phase, **fields}))


def _approval(
    ctx: DaprWorkflowContext, inp: AgentLoopInput, call: ToolCallRequest, step: int
) -> Steps:
    """Wait for a reviewer's decision, or take the default when none comes in time."""
    _status(ctx, "awaiting_approval", tool=call.name, arguments=call.arguments, step=step)
    try:
        raw = yield ctx.wait_for_external_event(
            APPROVAL_EVENT, timeout=timedelta(seconds=inp.approval_timeout_s)
        )
    except TimeoutError:
        return ApprovalDecision(
            approved=inp.default_decision == "approve",
            by="timeout",
            note=f"no decision within {inp.approval_timeout_s:g}s",
        )
    if isinstance(raw, dict):
        try:
            return ApprovalDecision.model_validate(raw)
        except ValueError:
            pass
    # A bad payload must not kill a months-long instance: it counts as a rejection.
    return ApprovalDecision(approved=False, by="invalid-event", note=str(raw)[:200])


def agent_loop(ctx: DaprWorkflowContext, inp: AgentLoopInput) -> Steps:
    """The durable agent loop: model turn, tool calls, repeat until the model answers."""
    items: list[dict[str, Any]] = []
    outputs: list[str] = []
    steps: list[StepRecord] = []
    status = "completed"
    for index, message in enumerate(inp.messages):
        if index > 0 and inp.pause_between_s > 0:
            _status(ctx, "sleeping", seconds=inp.pause_between_s, next_message=index)
            yield ctx.create_timer(timedelta(seconds=inp.pause_between_s))
        items.append({"role": "user", "content": message})
        for _turn in range(inp.max_turns):
            step = len(steps) + 1
            _status(ctx, "model_turn", step=step)
            turn = ModelTurnOutput.model_validate(
                (
                    yield ctx.call_activity(
                        MODEL_TURN,
                        input=ModelTurnInput(
                            instance_id=ctx.instance_id,
                            step=step,
                            agent_id=inp.agent_id,
                            items=items,
                        ),
                        retry_policy=ACTIVITY_RETRY,
                    )
                )
            )
            items += turn.items
            steps.append(
                StepRecord(step=step, kind="model", name=inp.agent_id, detail=turn.text or "")
            )
            if not turn.tool_calls:
                outputs.append(turn.text or "")
                break
            for call in turn.tool_calls:
                output = yield from _tool_step(ctx, inp, call, steps)
                items.append(
                    {"type": "function_call_output", "call_id": call.call_id, "output": output}
                )
        else:
            status = "max_turns"
            outputs.append("")
    _status(ctx, "done", steps=len(steps))
    return AgentLoopOutput(agent_id=inp.agent_id, outputs=outputs, steps=steps, status=status)


def _tool_step(
    ctx: DaprWorkflowContext, inp: AgentLoopInput, call: ToolCallRequest, steps: list[StepRecord]
) -> Steps:
    """One tool call, behind an approval when the input asks for one; returns its output."""
    if call.name in inp.approval_required:
        step = len(steps) + 1
        decision: ApprovalDecision = yield from _approval(ctx, inp, call, step)
        verdict = "approved" if decision.approved else "rejected"
        steps.append(
            StepRecord(
                step=step,
                kind="approval",
                name=call.name,
                detail=f"{verdict} by {decision.by or 'someone'}: {decision.note}".strip(": "),
            )
        )
        if not decision.approved:
            return f"not run: the call to {call.name} was rejected ({decision.note or 'no reason'})"
    step = len(steps) + 1
    _status(ctx, "tool_call", tool=call.name, step=step)
    result = ToolCallOutput.model_validate(
        (
            yield ctx.call_activity(
                TOOL_CALL,
                input=ToolCallInput(
                    instance_id=ctx.instance_id, step=step, agent_id=inp.agent_id, call=call
                ),
                retry_policy=ACTIVITY_RETRY,
            )
        )
    )
    steps.append(StepRecord(step=step, kind="tool", name=call.name, detail=result.output))
    return result.output


def recurring_agent(ctx: DaprWorkflowContext, inp: RecurringAgentInput) -> Steps:
    """Sleep, wake, run the agent as a child workflow, then continue as new.

    Continue-as-new restarts the instance with only the carried-over input, so an agent that
    lives for months keeps a history of one iteration."""
    _status(ctx, "sleeping", seconds=inp.every_s, runs_done=inp.done)
    yield ctx.create_timer(timedelta(seconds=inp.every_s))
    _status(ctx, "running", run=inp.done + 1)
    result = AgentLoopOutput.model_validate(
        (
            yield ctx.call_child_workflow(
                AGENT_LOOP,
                input=AgentLoopInput(agent_id=inp.agent_id, messages=[inp.message]),
                instance_id=f"{ctx.instance_id}-run-{inp.done + 1}",
            )
        )
    )
    done = inp.done + 1
    last = result.outputs[-1] if result.outputs else None
    if inp.runs is None or done < inp.runs:
        ctx.continue_as_new(inp.model_copy(update={"done": done, "last_output": last}))
        return None
    return RecurringAgentOutput(runs_done=done, last_output=last)


def fan_out(ctx: DaprWorkflowContext, inp: FanOutInput) -> Steps:
    """Fan out one message to several agents (child workflows), fan in their answers."""
    _status(ctx, "waiting_for_children", children=len(inp.agents))
    children: list[Any] = [
        ctx.call_child_workflow(
            AGENT_LOOP,
            input=AgentLoopInput(agent_id=agent, messages=[inp.message]),
            instance_id=f"{ctx.instance_id}-{i}-{agent}",
        )
        for i, agent in enumerate(inp.agents)
    ]
    results = yield when_all(children)
    answers = []
    for agent, raw in zip(inp.agents, results, strict=True):
        out = AgentLoopOutput.model_validate(raw)
        answers.append(AgentAnswer(agent_id=agent, output=out.outputs[-1] if out.outputs else ""))
    _status(ctx, "done", children=len(inp.agents))
    return FanOutOutput(answers=answers)
