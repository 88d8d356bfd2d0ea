"""The workflow orchestrators driven step by step with a fake workflow context.

An orchestrator is a generator: it yields a task (an activity, a timer, an external event, a
child workflow) and the runtime sends the task's result back in, or throws its error. The fake
context below hands out plain records as tasks and these tests play the runtime, so the
orchestrators' decisions (step numbers, approvals, timeouts, continue-as-new) are checked
without a sidecar. The real runtime runs them in tests/integration/test_workflows*.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from agentia_workflows import workflows
from agentia_workflows.contracts import (
    AGENT_LOOP,
    APPROVAL_EVENT,
    MODEL_TURN,
    TOOL_CALL,
    AgentLoopInput,
    AgentLoopOutput,
    FanOutInput,
    FanOutOutput,
    ModelTurnOutput,
    RecurringAgentInput,
    RecurringAgentOutput,
    ToolCallOutput,
    ToolCallRequest,
)


@dataclass(frozen=True)
class Task:
    """What the fake context hands out instead of a durable task."""

    kind: str  # activity, timer, event, child
    name: str = ""
    input: Any = None
    extra: Any = None


@dataclass
class FakeContext:
    instance_id: str = "wf-1"
    statuses: list[dict[str, Any]] = field(default_factory=list)
    continued_with: Any = None

    def set_custom_status(self, status: str) -> None:
        self.statuses.append(json.loads(status))

    def call_activity(self, name: str, *, input: Any, retry_policy: Any = None) -> Task:
        assert retry_policy is workflows.ACTIVITY_RETRY  # every activity may be retried
        return Task("activity", name, input)

    def create_timer(self, delay: timedelta) -> Task:
        return Task("timer", extra=delay)

    def wait_for_external_event(self, name: str, timeout: timedelta | None = None) -> Task:
        return Task("event", name, extra=timeout)

    def call_child_workflow(self, name: str, *, input: Any, instance_id: str) -> Task:
        return Task("child", name, input, instance_id)

    def continue_as_new(self, new_input: Any) -> None:
        self.continued_with = new_input


Runtime = Callable[[Task], Any]  # a task's result; an exception instance is thrown in


def play(orchestrator: Any, ctx: FakeContext, inp: Any, runtime: Runtime) -> tuple[Any, list[Task]]:
    """Run ``orchestrator`` to its end; its return value and every task it yielded."""
    gen = orchestrator(ctx, inp)
    tasks: list[Task] = []
    answer: Any = None
    throw: BaseException | None = None
    while True:
        try:
            task = gen.throw(throw) if throw is not None else gen.send(answer)
        except StopIteration as stop:
            return stop.value, tasks
        tasks.append(task)
        result = runtime(task)
        throw, answer = (result, None) if isinstance(result, BaseException) else (None, result)


def _turn(text: str | None = None, calls: list[ToolCallRequest] | None = None) -> dict[str, Any]:
    items = [{"role": "assistant", "content": text}] if text else []
    return ModelTurnOutput(items=items, tool_calls=calls or [], text=text).model_dump()


CALL = ToolCallRequest(call_id="c1", name="lookup", arguments='{"q": "x"}')


def _tool(output: str) -> dict[str, Any]:
    return ToolCallOutput(output=output, executions=1, replayed=False).model_dump()


def test_a_tool_call_then_an_answer_numbers_each_step_once() -> None:
    turns = iter([_turn(calls=[CALL]), _turn("done")])

    def runtime(task: Task) -> Any:
        return next(turns) if task.name == MODEL_TURN else _tool("found")

    out, tasks = play(
        workflows.agent_loop, FakeContext(), AgentLoopInput(agent_id="a", messages=["hi"]), runtime
    )
    result = AgentLoopOutput.model_validate(out)
    assert [t.name for t in tasks] == [MODEL_TURN, TOOL_CALL, MODEL_TURN]
    assert [t.input.step for t in tasks] == [1, 2, 3]
    assert [(s.step, s.kind) for s in result.steps] == [(1, "model"), (2, "tool"), (3, "model")]
    assert result.outputs == ["done"] and result.status == "completed"
    # The tool's output goes back to the model as the call's output.
    assert tasks[2].input.items[-1] == {
        "type": "function_call_output",
        "call_id": "c1",
        "output": "found",
    }


def test_a_loop_that_never_answers_stops_at_max_turns() -> None:
    def runtime(task: Task) -> Any:
        return _turn(calls=[CALL]) if task.name == MODEL_TURN else _tool("again")

    inp = AgentLoopInput(agent_id="a", messages=["hi"], max_turns=2)
    out, tasks = play(workflows.agent_loop, FakeContext(), inp, runtime)
    assert AgentLoopOutput.model_validate(out).status == "max_turns"
    assert [t.name for t in tasks] == [MODEL_TURN, TOOL_CALL, MODEL_TURN, TOOL_CALL]


@pytest.mark.parametrize(
    ("decision", "runs", "by"),
    [
        ({"approved": True, "by": "ana"}, True, "ana"),
        ({"approved": False, "by": "ana", "note": "no"}, False, "ana"),
        (TimeoutError(), False, "timeout"),  # default_decision is reject
        ("not a decision", False, "invalid-event"),
    ],
)
def test_an_approval_decides_whether_the_tool_runs(decision: Any, runs: bool, by: str) -> None:
    turns = iter([_turn(calls=[CALL]), _turn("ok")])

    def runtime(task: Task) -> Any:
        if task.kind == "event":
            assert task.name == APPROVAL_EVENT and task.extra == timedelta(seconds=30)
            return decision
        return next(turns) if task.name == MODEL_TURN else _tool("ran")

    inp = AgentLoopInput(
        agent_id="a", messages=["hi"], approval_required=["lookup"], approval_timeout_s=30
    )
    ctx = FakeContext()
    out, tasks = play(workflows.agent_loop, ctx, inp, runtime)
    result = AgentLoopOutput.model_validate(out)
    assert (TOOL_CALL in [t.name for t in tasks]) is runs
    approval = next(s for s in result.steps if s.kind == "approval")
    assert approval.detail.startswith(("approved" if runs else "rejected") + f" by {by}")
    assert {"phase": "awaiting_approval"}.items() <= ctx.statuses[1].items()
    if not runs:
        assert tasks[-1].input.items[-1]["output"].startswith("not run: the call to lookup")


def test_messages_after_the_first_wait_on_a_durable_timer() -> None:
    def runtime(task: Task) -> Any:
        return None if task.kind == "timer" else _turn("a")

    inp = AgentLoopInput(agent_id="a", messages=["one", "two"], pause_between_s=5)
    out, tasks = play(workflows.agent_loop, FakeContext(), inp, runtime)
    assert [t.kind for t in tasks] == ["activity", "timer", "activity"]
    assert tasks[1].extra == timedelta(seconds=5)
    assert AgentLoopOutput.model_validate(out).outputs == ["a", "a"]


def _child_answer(text: str) -> dict[str, Any]:
    return AgentLoopOutput(agent_id="a", outputs=[text], steps=[], status="completed").model_dump()


def test_a_recurring_agent_continues_as_new_until_its_runs_are_done() -> None:
    def runtime(task: Task) -> Any:
        return None if task.kind == "timer" else _child_answer("tick")

    ctx = FakeContext(instance_id="rec")
    inp = RecurringAgentInput(agent_id="a", message="m", every_s=60, runs=2)
    out, tasks = play(workflows.recurring_agent, ctx, inp, runtime)
    assert out is None and [t.kind for t in tasks] == ["timer", "child"]
    assert tasks[1].name == AGENT_LOOP and tasks[1].extra == "rec-run-1"  # one id per run
    carried = RecurringAgentInput.model_validate(ctx.continued_with)
    assert (carried.done, carried.last_output) == (1, "tick")

    last = FakeContext(instance_id="rec")
    out, tasks = play(workflows.recurring_agent, last, carried, runtime)
    assert tasks[1].extra == "rec-run-2" and last.continued_with is None
    assert RecurringAgentOutput.model_validate(out).runs_done == 2


def test_fan_out_asks_every_agent_once_and_keeps_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # when_all builds a durable task from real ones; here it is a task of the fake's kind.
    monkeypatch.setattr(workflows, "when_all", lambda tasks: Task("all", input=list(tasks)))

    def runtime(task: Task) -> Any:
        return [_child_answer(f"from {child.input.agent_id}") for child in task.input]

    inp = FanOutInput(agents=["x", "y"], message="m")
    out, tasks = play(workflows.fan_out, FakeContext(instance_id="f"), inp, runtime)
    children = tasks[0].input
    assert [c.extra for c in children] == ["f-0-x", "f-1-y"]
    answers = FanOutOutput.model_validate(out).answers
    assert [(a.agent_id, a.output) for a in answers] == [("x", "from x"), ("y", "from y")]
