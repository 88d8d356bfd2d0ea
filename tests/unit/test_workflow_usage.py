"""A workflow's model turns report their usage, once per turn in effect (no Dapr): the turn's
usage id is kept in its step record, so a turn asked for again reports the same id, and the
gateway's marker on that id counts it once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from agents import Agent, Model

from agentia.paths import repo_root
from agentia_gateway.accounting import added
from agentia_gateway.budgets import owner_candidates
from agentia_runner.offline_model import OfflineModelProvider
from agentia_runner.registry import Registry
from agentia_workflows.activities import AgentActivities
from agentia_workflows.chat_activities import ChatActivities
from agentia_workflows.contracts import (
    ChatTurnInput,
    ModelTurnInput,
    ToolCallInput,
    ToolCallRequest,
)

REGISTRY = Registry.load(repo_root() / "agents")


class Catalog:
    def agent(self, agent_id: str) -> Agent[Any]:
        return REGISTRY.agent(agent_id)

    def model(self, name: str) -> Model:
        return OfflineModelProvider().get_model(name)


@dataclass
class Ledger:
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    async def save(self, key: str, value: dict[str, Any]) -> None:
        self.records[key] = value


@dataclass
class Reports:
    seen: list[tuple[str, str, str, dict[str, int]]] = field(default_factory=list)

    async def report(
        self, usage_id: str, instance_id: str, model: str, usage: dict[str, int]
    ) -> None:
        self.seen.append((usage_id, instance_id, model, usage))


class Events:
    async def publish(
        self,
        run_id: str,
        seq: int,
        kind: str,
        status: str,
        data: dict[str, Any],
        thread_id: str | None = None,
    ) -> None:
        return None


def _turn(step: int = 1) -> ModelTurnInput:
    items = [{"role": "user", "content": "hello"}]
    return ModelTurnInput(instance_id="wf1", step=step, agent_id="assistant", items=items)


def test_a_model_turn_reports_its_usage_and_a_replay_reports_the_same_id() -> None:
    ledger, reports = Ledger(), Reports()
    activities = AgentActivities(Catalog(), ledger, reports)
    asyncio.run(activities.model_turn(_turn()))
    ((usage_id, instance, model, usage),) = reports.seen
    assert instance == "wf1" and model == "offline" and usage["requests"] == 1
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    # Asked again (an activity retried after its record was saved): the same usage id.
    asyncio.run(activities.model_turn(_turn()))
    assert [s[0] for s in reports.seen] == [usage_id, usage_id]
    # The instance id reused (its steps forgotten): the step runs again, with a new id.
    ledger.records.clear()
    asyncio.run(activities.model_turn(_turn()))
    assert reports.seen[-1][0] != usage_id


def test_a_chat_turn_reports_its_usage() -> None:
    reports = Reports()
    chats = ChatActivities(AgentActivities(Catalog(), Ledger(), reports), None, Events())  # type: ignore[arg-type]
    inp = ChatTurnInput(
        instance_id="chat1",
        step=1,
        agent_id="assistant",
        thread_id="t",
        item_count=0,
        new_items=[{"role": "user", "content": "hi"}],
        context_items=10,
        transcript=[],
    )
    asyncio.run(chats.chat_turn(inp))
    ((_, instance, model, usage),) = reports.seen
    assert (instance, model, usage["requests"]) == ("chat1", "offline", 1)


def test_child_workflows_are_owned_through_their_parent_ids() -> None:
    assert owner_candidates("p-1-assistant") == ["p-1-assistant", "p-1", "p"]
    assert owner_candidates("abc") == ["abc"]


def test_a_turn_adds_usage_but_no_run() -> None:
    row = {"input_tokens": 5, "output_tokens": 2, "requests": 1}
    day = added(None, row, {"offline": row}, runs=0)
    assert day["runs"] == 0 and day["requests"] == 1 and day["models"]["offline"]["runs"] == 0


@dataclass
class FlakyLedger(Ledger):
    """Refuses the first ``refusals`` saves of a finished step (the store down)."""

    refusals: int = 2
    refused: int = 0

    async def save(self, key: str, value: dict[str, Any]) -> None:
        if value.get("done") and self.refused < self.refusals:
            self.refused += 1
            raise ConnectionError("state store unavailable")
        await super().save(key, value)


def test_a_tool_that_ran_is_recorded_through_a_refusing_store_and_never_runs_again() -> None:
    call = ToolCallRequest(call_id="c1", name="calculator", arguments='{"expression": "6*7"}')
    inp = ToolCallInput(instance_id="wf1", step=2, agent_id="assistant", call=call)
    ledger = FlakyLedger()
    activities = AgentActivities(Catalog(), ledger, record_deadline_s=30)
    out = asyncio.run(activities.tool_call(inp))
    assert ledger.refused == 2 and out.executions == 1 and "42" in out.output
    again = asyncio.run(activities.tool_call(inp))  # the engine retries: a replay
    assert again.replayed and again.executions == 1


def test_a_store_refusing_past_the_deadline_fails_the_activity() -> None:
    ledger = FlakyLedger(refusals=100)
    activities = AgentActivities(Catalog(), ledger, record_deadline_s=0.1)
    with pytest.raises(ConnectionError):
        asyncio.run(activities.model_turn(_turn()))
