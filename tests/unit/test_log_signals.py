"""A stream on the replica that appends to its run's log is woken at once, never missed."""

from __future__ import annotations

import asyncio

from agentia_gateway.log_signals import LogSignals


def test_an_append_wakes_the_streams_watching_that_run() -> None:
    async def run() -> None:
        signals = LogSignals()
        with signals.watching("r1"), signals.watching("r2"):
            woken, other = signals.armed("r1"), signals.armed("r2")
            signals.notify("r1")
            await asyncio.wait_for(signals.wait(woken, 30), 5)  # at once, not after 30 s
            assert woken.is_set() and not other.is_set()
            assert not signals.armed("r1").is_set()  # the next append has a new event

    asyncio.run(run())


def test_an_append_between_arming_and_waiting_is_not_missed() -> None:
    async def run() -> None:
        signals = LogSignals()
        with signals.watching("r1"):
            woken = signals.armed("r1")  # taken before the log is read
            signals.notify("r1")  # the append lands while the stream reads
            await asyncio.wait_for(signals.wait(woken, 30), 5)

    asyncio.run(run())


def test_nothing_is_kept_for_runs_nobody_watches() -> None:
    signals = LogSignals()
    signals.notify("nobody")
    with signals.watching("r1"), signals.watching("r1"):
        signals.armed("r1")
    assert signals._events == {} and signals._watchers == {}


def test_without_an_append_the_wait_ends_at_the_poll_interval() -> None:
    async def run() -> float:
        signals = LogSignals()
        with signals.watching("r1"):
            started = asyncio.get_running_loop().time()
            await signals.wait(signals.armed("r1"), 0.05)
            return asyncio.get_running_loop().time() - started

    assert asyncio.run(run()) >= 0.04
