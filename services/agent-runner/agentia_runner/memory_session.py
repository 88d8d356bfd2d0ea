"""The Agents SDK's Session protocol over the memory service, through Dapr invocation.

Any runner replica can continue any thread: the conversation lives in the memory service,
never in this process. A run's session writes its items keyed by the run id and their
position in the run, and reads the thread as this attempt sees it: a run retried after a
crash writes each item once, however many attempts it took.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import cast

import pydantic
from agents.items import TResponseInputItem
from agents.memory import SessionABC

from agentia import faults
from agentia.contracts import InvokeError
from agentia.contracts import memory as memory_api
from agentia.dapr import DaprClient, DaprError, fields_reason
from agentia.faults import Faults


@contextlib.contextmanager
def memory_errors() -> Iterator[None]:
    """memory's refusals as the DaprError the runner's attempts judge (by its status: the
    mesh away, or the run bad); a request memory would refuse is its 422, raised here."""
    try:
        yield
    except InvokeError as exc:
        raise DaprError(exc.status, f"memory: {exc.reason}") from None
    except pydantic.ValidationError as exc:
        raise DaprError(422, f"memory: {fields_reason(exc.errors())}") from None


@contextlib.contextmanager
def unless_no_thread() -> Iterator[None]:
    """:func:`memory_errors`, but memory not knowing the thread (404) is no error."""
    try:
        with memory_errors():
            yield
    except DaprError as exc:
        if exc.status != 404:
            raise


class MemorySession(SessionABC):
    """Thread ``session_id`` of the memory service, as attempt ``attempt`` of ``run_id``
    (without a run: plain appends, as any client's)."""

    def __init__(
        self,
        client: DaprClient,
        thread_id: str,
        run_id: str | None = None,
        attempt: int = 1,
        crash: Faults = faults.NO_FAULTS,
    ) -> None:
        self.session_id = thread_id
        self.run_id, self.attempt, self.crash = run_id, attempt, crash
        self.position = 0  # items this attempt has written so far
        self._memory = memory_api.MemoryClient(client.call)

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        found = None
        with unless_no_thread():
            query = memory_api.ItemsQuery(
                limit=limit or None,
                run_id=self.run_id or None,
                attempt=self.attempt if self.run_id else None,
            )
            found = await self._memory.items(self.session_id, query)
        return cast("list[TResponseInputItem]", found.items if found else [])

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        if not items:
            return
        with unless_no_thread():
            run = None
            if self.run_id:
                run = memory_api.RunKey(
                    run_id=self.run_id, attempt=self.attempt, position=self.position
                )
            body = memory_api.ItemsAdd(items=[dict(i) for i in items], run=run)
            await self._memory.add_items(self.session_id, body)
        self.position += len(items)
        self.crash.hit(faults.RUNNER_AFTER_THREAD_APPEND, self.run_id, self.session_id)

    async def pop_item(self) -> TResponseInputItem | None:
        found = None
        with unless_no_thread():
            found = await self._memory.pop_item(self.session_id)
        item = found.item if found else None
        if item is not None and self.position:
            self.position -= 1
        return cast("TResponseInputItem | None", item)

    async def clear_session(self) -> None:
        with unless_no_thread():
            await self._memory.clear_items(self.session_id)

    async def settle(self) -> None:
        """This attempt is done: drop what earlier attempts of the run left beyond its items."""
        if self.run_id and self.attempt > 1:
            with unless_no_thread():
                body = memory_api.RunSettle(attempt=self.attempt, count=self.position)
                await self._memory.settle_run(self.session_id, self.run_id, body)
