"""A run's events are published pipelined, numbered in order, and a failed publish is never
silently skipped: it fails the attempt (which is then retried)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentia.events import RunEvent, RunRequested
from agentia_runner.attempts import EventSink


class SlowBroker:
    """Confirms each publish after a delay; the ``fail``-th publish fails."""

    def __init__(self, fail: int | None = None) -> None:
        self.fail, self.started, self.confirmed = fail, 0, []
        self.in_flight = self.most_in_flight = 0

    async def publish(self, topic: str, event: RunEvent, headers: Any = None) -> None:
        self.started += 1
        n = self.started
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.02)
            if n == self.fail:
                raise ConnectionError("broker away")
            self.confirmed.append(event.seq)
        finally:
            self.in_flight -= 1


REQ = RunRequested(run_id="r1", agent_id="assistant")


def test_events_go_out_without_waiting_for_each_other_and_flush_waits_for_all() -> None:
    broker = SlowBroker()

    async def run() -> float:
        sink = EventSink(broker, REQ)  # type: ignore[arg-type]
        started = asyncio.get_running_loop().time()
        for i in range(10):
            await sink("message.delta", {"delta": str(i)})
        queued = asyncio.get_running_loop().time() - started
        await sink.flush()
        return queued

    queued = asyncio.run(run())
    assert queued < 0.1  # ten 20 ms confirms, not waited for one by one
    assert broker.most_in_flight > 1
    assert sorted(broker.confirmed) == list(range(10))


def test_a_failed_publish_fails_the_next_event_and_the_flush() -> None:
    broker = SlowBroker(fail=2)

    async def run() -> None:
        sink = EventSink(broker, REQ)  # type: ignore[arg-type]
        await sink("run.started", {})
        await sink("message.delta", {"delta": "a"})
        await asyncio.sleep(0.1)  # the second publish has failed by now
        with pytest.raises(ConnectionError):
            await sink("message.delta", {"delta": "b"})
        with pytest.raises(ConnectionError):
            await sink.flush()

    asyncio.run(run())
