"""The Agents SDK's Session protocol over the memory service, through Dapr invocation.

Any runner replica can continue any thread: the conversation lives in the memory service,
never in this process. A run's session writes its items keyed by the run id and their
position in the run, and reads the thread as this attempt sees it: a run retried after a
crash writes each item once, however many attempts it took.
"""

from __future__ import annotations

from typing import Any

from agents.items import TResponseInputItem
from agents.memory import SessionABC

from agentia import faults, names
from agentia.dapr import DaprClient, DaprError
from agentia.faults import Faults


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
        self._client = client
        self._base = f"internal/threads/{thread_id}"

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        resp = await self._client.invoke(names.MEMORY, path, http_method=method, json_body=body)
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise DaprError(resp.status_code, f"memory: {resp.text[:300]}")
        return resp.json() if resp.content else None

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        params = [f"limit={limit}"] if limit else []
        if self.run_id:
            params += [f"run_id={self.run_id}", f"attempt={self.attempt}"]
        query = f"?{'&'.join(params)}" if params else ""
        body = await self._call("GET", f"{self._base}/items{query}")
        return list(body["items"]) if body else []

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        if not items:
            return
        body: dict[str, Any] = {"items": list(items)}
        if self.run_id:
            body["run"] = {
                "run_id": self.run_id,
                "attempt": self.attempt,
                "position": self.position,
            }
        await self._call("POST", f"{self._base}/items", body)
        self.position += len(items)
        self.crash.hit(faults.RUNNER_AFTER_THREAD_APPEND, self.run_id, self.session_id)

    async def pop_item(self) -> TResponseInputItem | None:
        body = await self._call("POST", f"{self._base}/items/pop", {})
        item = body["item"] if body else None
        if item is not None and self.position:
            self.position -= 1
        return item

    async def clear_session(self) -> None:
        await self._call("DELETE", f"{self._base}/items")

    async def settle(self) -> None:
        """This attempt is done: drop what earlier attempts of the run left beyond its items."""
        if self.run_id and self.attempt > 1:
            body = {"attempt": self.attempt, "count": self.position}
            await self._call("POST", f"{self._base}/runs/{self.run_id}/settle", body)
