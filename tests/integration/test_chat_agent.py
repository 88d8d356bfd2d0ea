"""The ChatAgent workflow through the real mesh: user turns as events, the transcript in a
memory-service thread (claim check), continue-as-new every few messages without losing the
events that arrive meanwhile, each tool body run once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from agentia import names
from agentia_workflows.contracts import CHAT_AGENT, MESSAGE_EVENT

from .conftest import Sidecar, wait_for

pytestmark = pytest.mark.integration
CALC = 'calculator {"expression": "%d*%d"}'


def state(app: Sidecar, instance: str) -> dict[str, Any]:
    resp = app.invoke(names.AGENT_RUNNER, "GET", f"internal/workflows/{instance}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_a_long_chat_stays_in_order_across_generations(chat_ops: Sidecar) -> None:
    instance = f"chat-{uuid.uuid4().hex[:8]}"
    inp = {"agent_id": "assistant", "generation": 3, "context_items": 8}
    resp = chat_ops.invoke(
        names.AGENT_RUNNER,
        "POST",
        "internal/workflows",
        {"workflow": CHAT_AGENT, "input": inp, "instance_id": instance},
    )
    assert resp.status_code == 201, resp.text
    texts = [CALC % (i, i) if i % 2 else f"hello {i}" for i in range(1, 8)]
    for text in texts:  # all at once: some arrive while the instance continues as new
        raised = chat_ops.invoke(
            names.AGENT_RUNNER,
            "POST",
            f"internal/workflows/{instance}/events/{MESSAGE_EVENT}",
            {"text": text},
        )
        assert raised.status_code == 200, raised.text

    def all_answered() -> bool:
        resp = chat_ops.invoke(names.AGENT_RUNNER, "GET", f"internal/workflows/{instance}")
        custom = resp.json().get("custom_status") if resp.status_code == 200 else None
        return isinstance(custom, dict) and custom.get("messages_done") == len(texts)

    wait_for(all_answered, 90, "seven messages answered")
    end = chat_ops.invoke(
        names.AGENT_RUNNER,
        "POST",
        f"internal/workflows/{instance}/events/{MESSAGE_EVENT}",
        {"end": True},
    )
    assert end.status_code == 200, end.text
    wait_for(
        lambda: (
            chat_ops.invoke(names.AGENT_RUNNER, "GET", f"internal/workflows/{instance}")
            .json()
            .get("status")
            == "COMPLETED"
        ),
        30,
        "ended",
    )
    out = state(chat_ops, instance)["output"]
    assert out["messages_done"] == 7 and out["ended"] == "end" and out["thread_id"] == instance
    assert out["last_answer"] == "[offline model] calculator returned: 49"

    thread_items = f"internal/threads/{instance}/items"
    items = chat_ops.invoke(names.MEMORY, "GET", thread_items).json()["items"]
    users = [i["content"] for i in items if i.get("role") == "user"]
    assert users == texts, "every message once, in the order sent"
    outputs = [i["output"] for i in items if i.get("type") == "function_call_output"]
    assert outputs == [str(i * i) for i in (1, 3, 5, 7)]

    step_path = f"internal/workflows/{instance}/steps"
    steps = chat_ops.invoke(names.AGENT_RUNNER, "GET", step_path).json()
    tools = [s for s in steps["steps"] if s["kind"] == "tool"]
    assert [s["executions"] for s in tools] == [1, 1, 1, 1]
