"""Message deltas batched on their way out: one publish per burst of tokens, not per token.

No Dapr here. A model streams a token every few milliseconds, and every event a run emits is
a publish, a delivery to each subscriber and a write of the run's log: per token, that is
most of what a run costs on the mesh. The first delta of a message goes out at once (time to
first token is what a user feels); the ones after it wait at most ``window_s`` (or until
``max_chars`` have gathered) and go out joined as one ``message.delta``. Any other event
sends what is waiting first, so the order of a run's events never changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from agentia.events import Kind

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
DELTA = Kind.MESSAGE_DELTA
WINDOW_S = 0.03  # a stream stays token-smooth to the eye at 30 ms
MAX_CHARS = 2048


class DeltaBatcher:
    """Wraps ``emit``; call :meth:`close` when the run's events end."""

    def __init__(self, emit: Emit, window_s: float = WINDOW_S, max_chars: int = MAX_CHARS) -> None:
        self._emit, self.window_s, self.max_chars = emit, window_s, max_chars
        self._parts: list[str] = []
        self._size = 0
        self._first = True  # the next delta starts a message: it goes at once
        self._timer: asyncio.Task[None] | None = None
        # One event out at a time: the sink numbers events as it publishes them.
        self._lock = asyncio.Lock()
        self._error: Exception | None = None  # a timed send that failed: raised to the run

    async def __call__(self, kind: str, data: dict[str, Any]) -> None:
        self._raise_failed()
        if kind != DELTA:
            async with self._lock:
                await self._flush()
                self._first = True
                await self._emit(kind, data)
            return
        text = str(data.get("delta", ""))
        async with self._lock:
            if self._first and not self._parts:
                self._first = False
                await self._emit(DELTA, {"delta": text})
                return
            self._parts.append(text)
            self._size += len(text)
            if self._size >= self.max_chars:
                await self._flush()
            elif self._timer is None:
                self._timer = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.window_s)
        async with self._lock:
            self._timer = None  # this task is ending: _flush must not cancel it
            try:
                await self._flush()
            except Exception as exc:  # nobody awaits this task: the run's next step raises it
                self._error = exc

    def _raise_failed(self) -> None:
        if self._error is not None:
            raise self._error

    async def _flush(self) -> None:
        """Send what is waiting (the lock is held)."""
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
        self._timer = None
        if not self._parts:
            return
        text = "".join(self._parts)
        self._parts, self._size = [], 0
        await self._emit(DELTA, {"delta": text})

    async def close(self) -> None:
        """Send what is waiting; nothing is held back after this."""
        self._raise_failed()
        async with self._lock:
            await self._flush()

    def discard(self) -> None:
        """Drop what is waiting (the run is being abandoned) and stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._parts, self._size = [], 0
