"""Regression tests for three workflow bugs of Dapr 1.18.0 (fixed upstream after it), in the
shapes our workflows take, through the real mesh: each shows the project does not hit it.

- dapr #10097: a workflow hangs when a child or an activity completes across continue-as-new.
  Ours always await their children and activities before continuing as new; here they do so
  at every generation (a recurring agent's child, a chat agent's model turn and tool call
  right before each continue-as-new, with messages arriving meanwhile).
- dapr #10094: repeated waits on one event name leak their timers. A chat agent waits on
  ``message`` with an idle timeout, once per message: a timer left from an earlier wait must
  not end a later one (the agent would quit while it is being talked to).
- dapr #10157: a recursive terminate leaves the parent running. Terminating a fan-out whose
  children are mid-activity must end the parent and every child.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from agentia import names
from agentia_workflows.contracts import CHAT_AGENT, FAN_OUT, MESSAGE_EVENT, RECURRING_AGENT

from .conftest import Sidecar, wait_for

pytestmark = pytest.mark.integration
WORKFLOWS = "internal/workflows"


def start(app: Sidecar, workflow: str, inp: dict[str, Any], prefix: str) -> str:
    instance = f"{prefix}-{uuid.uuid4().hex[:8]}"
    body = {"workflow": workflow, "input": inp, "instance_id": instance}
    resp = app.invoke(names.AGENT_RUNNER, "POST", WORKFLOWS, body)
    assert resp.status_code == 201, resp.text
    return instance


def state(app: Sidecar, instance: str) -> dict[str, Any]:
    """The instance's state, or {} while it is not found (yet) or agent-runner is busy."""
    resp = app.invoke(names.AGENT_RUNNER, "GET", f"{WORKFLOWS}/{instance}")
    return dict(resp.json()) if resp.status_code == 200 else {}


def wait_status(app: Sidecar, instance: str, want: str, timeout: float = 60) -> dict[str, Any]:
    wait_for(lambda: state(app, instance).get("status") == want, timeout, f"{instance} {want}")
    return state(app, instance)


def answered(app: Sidecar, instance: str) -> int | None:
    """How many messages a chat agent has answered (its custom status)."""
    return (state(app, instance).get("custom_status") or {}).get("messages_done")


def say(app: Sidecar, instance: str, body: dict[str, Any]) -> None:
    path = f"{WORKFLOWS}/{instance}/events/{MESSAGE_EVENT}"
    resp = app.invoke(names.AGENT_RUNNER, "POST", path, body)
    assert resp.status_code == 200, resp.text


def transcript(app: Sidecar, thread: str) -> list[dict[str, Any]]:
    resp = app.invoke(names.MEMORY, "GET", f"internal/threads/{thread}/items")
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


def test_children_and_activities_completing_at_every_continue_as_new(chat_ops: Sidecar) -> None:
    """dapr #10097: each generation's child completes just before it continues as new."""
    inp = {"agent_id": "assistant", "message": "tick", "every_s": 0.2, "runs": 5}
    recurring = start(chat_ops, RECURRING_AGENT, inp, "regress-can")
    done = wait_status(chat_ops, recurring, "COMPLETED", timeout=120)
    assert done["output"]["runs_done"] == 5, done
    for run in range(1, 6):
        assert state(chat_ops, f"{recurring}-run-{run}").get("status") == "COMPLETED", run

    # A chat agent continuing as new after every message, its messages all sent at once: a
    # model turn and a tool call complete right before each continue-as-new, and the events
    # that arrive meanwhile go on to the next generation.
    chat = start(chat_ops, CHAT_AGENT, {"agent_id": "assistant", "generation": 1}, "regress-chat")
    texts = [f'calculator {{"expression": "{i}*3"}}' for i in range(1, 6)]
    for text in texts:
        say(chat_ops, chat, {"text": text})
    wait_for(
        lambda: answered(chat_ops, chat) == len(texts),
        120,
        "every message answered across five generations",
    )
    say(chat_ops, chat, {"end": True})
    out = wait_status(chat_ops, chat, "COMPLETED")["output"]
    assert out["messages_done"] == 5 and out["ended"] == "end", out
    items = transcript(chat_ops, chat)
    assert [i["content"] for i in items if i.get("role") == "user"] == texts
    outputs = [i["output"] for i in items if i.get("type") == "function_call_output"]
    assert outputs == [str(i * 3) for i in range(1, 6)], "each tool call once, in order"


def test_a_wait_is_not_ended_by_an_earlier_waits_timer(chat_ops: Sidecar) -> None:
    """dapr #10094: one wait per message on one event name, each with the idle timeout."""
    idle_s, gap_s, messages = 4.0, 1.5, 6  # the talk lasts over twice the idle timeout
    inp = {"agent_id": "assistant", "generation": 100, "idle_timeout_s": idle_s}
    chat = start(chat_ops, CHAT_AGENT, inp, "regress-timers")
    answered_at = 0.0
    for i in range(messages):
        if i:
            time.sleep(gap_s)  # pacing the talk, not a wait for a result
        say(chat_ops, chat, {"text": f"message {i}"})

        def caught_up(n: int = i + 1) -> bool:
            return answered(chat_ops, chat) == n

        wait_for(caught_up, 60, f"message {i} answered")
        answered_at = time.monotonic()  # the next wait began just before this
        assert state(chat_ops, chat).get("status") == "RUNNING", f"ended while talked to, at {i}"
    out = wait_status(chat_ops, chat, "COMPLETED", timeout=60)["output"]
    assert out["ended"] == "idle" and out["messages_done"] == messages, out
    # The last wait ran its whole timeout (less the polls' latency), not the rest of an
    # earlier wait's timer, which would have fired about gap_s sooner.
    waited = time.monotonic() - answered_at
    assert waited >= idle_s - 1.0, f"ended idle {waited:.1f}s after the last answer"
    users = [i["content"] for i in transcript(chat_ops, chat) if i.get("role") == "user"]
    assert users == [f"message {i}" for i in range(messages)]


def test_terminating_a_parent_ends_it_and_every_child(chat_ops: Sidecar) -> None:
    """dapr #10157: a recursive terminate of a fan-out whose children are mid-activity."""
    agents = ["assistant", "assistant", "assistant"]
    inp = {"agents": agents, "message": 'please wait {"seconds": 20}'}
    parent = start(chat_ops, FAN_OUT, inp, "regress-term")
    children = [f"{parent}-{i}-{agent}" for i, agent in enumerate(agents)]
    for child in children:
        wait_status(chat_ops, child, "RUNNING")
    resp = chat_ops.invoke(names.AGENT_RUNNER, "POST", f"{WORKFLOWS}/{parent}/terminate")
    assert resp.status_code == 200, resp.text
    wait_status(chat_ops, parent, "TERMINATED", timeout=30)
    for child in children:
        wait_status(chat_ops, child, "TERMINATED", timeout=30)
