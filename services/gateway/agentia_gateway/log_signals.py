"""Wakes this replica's streams when this replica appends to their run's log.

No Dapr here. A run's events reach one gateway replica (the broker hands each to one
subscriber); a stream on that replica is woken by the append itself, and a stream on
another replica still finds the event by reading the log at its poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class LogSignals:
    """One event per watched run, set (and replaced) when its log grows here."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._watchers: dict[str, int] = {}

    @contextlib.contextmanager
    def watching(self, run_id: str) -> Iterator[None]:
        """While inside, :meth:`notify` of ``run_id`` wakes :meth:`wait`."""
        self._watchers[run_id] = self._watchers.get(run_id, 0) + 1
        try:
            yield
        finally:
            left = self._watchers[run_id] - 1
            if left:
                self._watchers[run_id] = left
            else:
                del self._watchers[run_id]
                self._events.pop(run_id, None)

    def armed(self, run_id: str) -> asyncio.Event:
        """The event the next append sets: take it *before* reading the log, so an append
        in between is not missed."""
        event = self._events.get(run_id)
        if event is None or event.is_set():
            event = self._events[run_id] = asyncio.Event()
        return event

    def notify(self, run_id: str) -> None:
        if run_id in self._watchers:
            event = self._events.pop(run_id, None)
            if event is not None:
                event.set()

    @staticmethod
    async def wait(event: asyncio.Event, timeout_s: float) -> None:
        """Until ``event`` is set or ``timeout_s`` has passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)
