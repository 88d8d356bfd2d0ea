"""The Agents SDK's Session protocol over the memory service, through Dapr invocation.

Any runner replica can continue any thread: the conversation lives in the memory service,
never in this process.
"""

from __future__ import annotations

from typing import Any

from agents.items import TResponseInputItem
from agents.memory import SessionABC

from agentia import names
from agentia.dapr import DaprClient, DaprError


class MemorySession(SessionABC):
    """Thread ``session_id`` of the memory service."""

    def __init__(self, client: DaprClient, thread_id: str) -> None:
        self.session_id = thread_id
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
        query = f"?limit={limit}" if limit else ""
        body = await self._call("GET", f"{self._base}/items{query}")
        return list(body["items"]) if body else []

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        if items:
            await self._call("POST", f"{self._base}/items", {"items": list(items)})

    async def pop_item(self) -> TResponseInputItem | None:
        body = await self._call("POST", f"{self._base}/items/pop", {})
        return body["item"] if body else None

    async def clear_session(self) -> None:
        await self._call("DELETE", f"{self._base}/items")
