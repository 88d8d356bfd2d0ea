"""Message deltas leave the runner batched: the first at once, the rest joined, order kept."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentia.paths import repo_root
from agentia_runner.deltas import DeltaBatcher
from agentia_runner.execute import execute
from agentia_runner.registry import Registry
from tests.unit.test_runner_domain import CFG

Seen = list[tuple[str, dict[str, Any]]]


def _recorder() -> tuple[Seen, Any]:
    seen: Seen = []

    async def emit(kind: str, data: dict[str, Any]) -> None:
        seen.append((kind, data))

    return seen, emit


def test_first_delta_at_once_the_rest_joined_before_the_next_event() -> None:
    seen, emit = _recorder()

    async def run() -> None:
        batch = DeltaBatcher(emit, window_s=60)
        for word in ("one", " two", " three"):
            await batch("message.delta", {"delta": word})
        assert seen == [("message.delta", {"delta": "one"})]  # the rest waits
        await batch("message.completed", {"text": "one two three"})
        await batch("message.delta", {"delta": "next"})  # a new message: at once again
        await batch.close()

    asyncio.run(run())
    assert seen == [
        ("message.delta", {"delta": "one"}),
        ("message.delta", {"delta": " two three"}),
        ("message.completed", {"text": "one two three"}),
        ("message.delta", {"delta": "next"}),
    ]


def test_waiting_deltas_go_out_after_the_window_or_at_the_size_bound() -> None:
    seen: Seen = []

    async def run() -> None:
        second = asyncio.Event()

        async def emit(kind: str, data: dict[str, Any]) -> None:
            seen.append((kind, data))
            if len(seen) == 2:
                second.set()

        batch = DeltaBatcher(emit, window_s=0.01, max_chars=8)
        await batch("message.delta", {"delta": "a"})
        await batch("message.delta", {"delta": "b"})
        await asyncio.wait_for(second.wait(), 5)  # the window ran out: "b" went alone
        await batch("message.delta", {"delta": "12345678"})  # over the bound: sent now
        assert len(seen) == 3
        await batch.close()

    asyncio.run(run())
    assert [d["delta"] for _, d in seen] == ["a", "b", "12345678"]


def test_an_abandoned_attempt_sends_nothing_more() -> None:
    seen, emit = _recorder()

    async def run() -> None:
        batch = DeltaBatcher(emit, window_s=0.01)
        await batch("message.delta", {"delta": "a"})
        await batch("message.delta", {"delta": "b"})
        batch.discard()
        await asyncio.sleep(0.05)

    asyncio.run(run())
    assert seen == [("message.delta", {"delta": "a"})]


def test_a_run_streams_its_whole_text_in_fewer_events() -> None:
    seen, emit = _recorder()
    agent = Registry.load(repo_root() / "agents").agent("assistant")
    outcome = asyncio.run(execute(agent, "hello there from a test", CFG, emit))
    deltas = [d["delta"] for k, d in seen if k == "message.delta"]
    assert "".join(deltas) == outcome.output
    assert 1 <= len(deltas) < len(str(outcome.output).split())
    kinds = [k for k, _ in seen]
    assert kinds.index("message.completed") > max(
        i for i, k in enumerate(kinds) if k == "message.delta"
    )


def test_a_timed_send_that_failed_fails_the_run_at_its_next_step() -> None:
    async def run() -> None:
        calls = 0

        async def emit(kind: str, data: dict[str, Any]) -> None:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise ConnectionError("sidecar away")

        batch = DeltaBatcher(emit, window_s=0.01)
        await batch("message.delta", {"delta": "a"})
        await batch("message.delta", {"delta": "b"})  # goes on the timer, which fails
        await asyncio.sleep(0.1)
        with pytest.raises(ConnectionError):
            await batch("message.completed", {"text": "ab"})

    asyncio.run(run())


def test_agent_updated_only_when_the_agent_changes() -> None:
    from agents import Agent

    seen, emit = _recorder()
    expert = Agent(name="expert", instructions="x")
    front = Agent(name="front", instructions="x", handoffs=[expert])
    asyncio.run(execute(front, "please ask expert", CFG, emit))
    updates = [d["agent"] for k, d in seen if k == "agent.updated"]
    assert updates == ["expert"]  # the starting agent is named by run.started already
