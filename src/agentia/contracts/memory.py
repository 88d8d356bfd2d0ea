"""memory's internal API as its callers use it: :class:`MemoryClient`, one typed method per
endpoint, over a :class:`~agentia.contracts.Call`. The paths and models are in
:mod:`agentia.contracts.memory_threads` (threads and their items) and
:mod:`agentia.contracts.memory_store` (the store and long-term memories), re-exported here.

The client raises what its Call raises (:class:`~agentia.contracts.InvokeError` from
``DaprClient.call``): a caller with its own error policy wraps the Call (the gateway turns a
4xx into the same refusal for its client, tool-mcp into a ToolError) or catches the error
(agent-runner's session reads a 404 as "no thread")."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from agentia import names
from agentia.contracts import Call
from agentia.contracts.memory_store import (
    MAX_CONTENT,
    MAX_DEPTH,
    MAX_KEY,
    MAX_QUERY,
    MAX_TTL_MINUTES,
    MEMORIES,
    MEMORIES_DELETE,
    MEMORIES_SEARCH,
    MEMORY_KINDS,
    STORE,
    STORE_DELETE,
    STORE_GET,
    STORE_NAMESPACES,
    STORE_PUT,
    STORE_SEARCH,
    Extraction,
    FoundMemories,
    GetItem,
    ItemRef,
    ListNamespaces,
    MemoryKind,
    MemoryRef,
    Namespaces,
    PutItem,
    SavedMemory,
    SaveMemory,
    ScoredItem,
    ScoredItems,
    SearchItems,
    SearchMemories,
    StoreItem,
    extraction_path,
)
from agentia.contracts.memory_threads import (
    MAX_ITEMS_PER_WRITE,
    MAX_ITEMS_READ,
    THREADS,
    THREADS_SEARCH,
    ItemCount,
    ItemsAdd,
    ItemsQuery,
    PoppedItem,
    RunKey,
    RunSettle,
    Storable,
    Thread,
    ThreadCopy,
    ThreadCreate,
    ThreadCreated,
    ThreadItems,
    ThreadList,
    ThreadPatch,
    ThreadSearch,
    Truncate,
    copy_path,
    items_path,
    pop_path,
    settle_path,
    thread_path,
    truncate_path,
)

__all__ = [
    "MAX_CONTENT",
    "MAX_DEPTH",
    "MAX_ITEMS_PER_WRITE",
    "MAX_ITEMS_READ",
    "MAX_KEY",
    "MAX_QUERY",
    "MAX_TTL_MINUTES",
    "MEMORIES",
    "MEMORIES_DELETE",
    "MEMORIES_SEARCH",
    "MEMORY_KINDS",
    "STORE",
    "STORE_DELETE",
    "STORE_GET",
    "STORE_NAMESPACES",
    "STORE_PUT",
    "STORE_SEARCH",
    "THREADS",
    "THREADS_SEARCH",
    "Extraction",
    "FoundMemories",
    "GetItem",
    "ItemCount",
    "ItemRef",
    "ItemsAdd",
    "ItemsQuery",
    "ListNamespaces",
    "MemoryClient",
    "MemoryKind",
    "MemoryRef",
    "Namespaces",
    "PoppedItem",
    "PutItem",
    "RunKey",
    "RunSettle",
    "SaveMemory",
    "SavedMemory",
    "ScoredItem",
    "ScoredItems",
    "SearchItems",
    "SearchMemories",
    "Storable",
    "StoreItem",
    "Thread",
    "ThreadCopy",
    "ThreadCreate",
    "ThreadCreated",
    "ThreadItems",
    "ThreadList",
    "ThreadPatch",
    "ThreadSearch",
    "Truncate",
    "copy_path",
    "extraction_path",
    "items_path",
    "pop_path",
    "settle_path",
    "thread_path",
    "truncate_path",
]

Answer = TypeVar("Answer", bound=BaseModel)


def _json(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(mode="json")


class MemoryClient:
    """memory's internal endpoints, one method each: typed requests in, answer models out
    (None where memory answers 204). ``app_id``: where memory runs (tool-mcp's is set)."""

    def __init__(self, call: Call, app_id: str = names.MEMORY) -> None:
        self._call = call
        self.app_id = app_id

    async def _ask(
        self, answer: type[Answer], path: str, body: Any = None, http_method: str = "POST"
    ) -> Answer:
        found = await self._call(self.app_id, path, http_method=http_method, body=body)
        return answer.model_validate(found)

    async def _send(self, path: str, body: Any = None, http_method: str = "POST") -> None:
        await self._call(self.app_id, path, http_method=http_method, body=body)

    # -- threads ----------------------------------------------------------------------

    async def create_thread(self, body: ThreadCreate) -> ThreadCreated:
        """Create a thread, or find the one with that id (``created`` says which)."""
        return await self._ask(ThreadCreated, THREADS, _json(body))

    async def search_threads(self, body: ThreadSearch) -> ThreadList:
        """Threads by metadata or ids, newest first."""
        return await self._ask(ThreadList, THREADS_SEARCH, _json(body))

    async def thread(self, thread_id: str) -> Thread:
        """One thread (a 404 when there is none)."""
        return await self._ask(Thread, thread_path(thread_id), http_method="GET")

    async def patch_thread(self, thread_id: str, body: ThreadPatch) -> Thread:
        """Merge metadata into the thread's."""
        return await self._ask(Thread, thread_path(thread_id), _json(body), "PATCH")

    async def copy_thread(self, thread_id: str, body: ThreadCopy | None = None) -> Thread:
        """A copy of the thread under a new id (``body.thread_id``, else a new one)."""
        return await self._ask(Thread, copy_path(thread_id), _json(body or ThreadCopy()))

    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread and its items."""
        await self._send(thread_path(thread_id), http_method="DELETE")

    async def items(self, thread_id: str, query: ItemsQuery | None = None) -> ThreadItems:
        """The thread's items, oldest first (``query``: the latest few, or a run's view)."""
        return await self._ask(ThreadItems, items_path(thread_id, query), http_method="GET")

    async def add_items(self, thread_id: str, body: ItemsAdd) -> ItemCount:
        """Append items (a run's: at their positions in the run); creates the thread."""
        return await self._ask(ItemCount, items_path(thread_id), _json(body))

    async def settle_run(self, thread_id: str, run_id: str, body: RunSettle) -> ItemCount:
        """An attempt of the run is done: drop what earlier attempts left beyond its items."""
        return await self._ask(ItemCount, settle_path(thread_id, run_id), _json(body))

    async def truncate(self, thread_id: str, body: Truncate) -> ItemCount:
        """Keep the first ``body.count`` items."""
        return await self._ask(ItemCount, truncate_path(thread_id), _json(body))

    async def pop_item(self, thread_id: str) -> PoppedItem:
        """Take the last item off the thread."""
        return await self._ask(PoppedItem, pop_path(thread_id), {})

    async def clear_items(self, thread_id: str) -> None:
        """Remove every item of the thread (the thread stays)."""
        await self._send(items_path(thread_id), http_method="DELETE")

    # -- the store --------------------------------------------------------------------

    async def put_item(self, body: PutItem) -> None:
        """Insert or replace an item."""
        await self._send(STORE_PUT, _json(body))

    async def get_item(self, body: GetItem) -> StoreItem:
        """One item (a 404 when there is none, or it expired)."""
        return await self._ask(StoreItem, STORE_GET, _json(body))

    async def delete_item(self, body: ItemRef) -> None:
        """Delete an item (a 404 when there is none)."""
        await self._send(STORE_DELETE, _json(body))

    async def search_items(self, body: SearchItems) -> ScoredItems:
        """Items under a prefix that pass a filter, newest or most similar first."""
        return await self._ask(ScoredItems, STORE_SEARCH, _json(body))

    async def list_namespaces(self, body: ListNamespaces) -> Namespaces:
        """Distinct namespaces, sorted."""
        return await self._ask(Namespaces, STORE_NAMESPACES, _json(body))

    # -- long-term memories -----------------------------------------------------------

    async def save_memory(self, body: SaveMemory) -> SavedMemory:
        """Save a memory, or merge it into a similar one."""
        return await self._ask(SavedMemory, MEMORIES, _json(body))

    async def search_memories(self, body: SearchMemories) -> FoundMemories:
        """Memories under a prefix, most similar first."""
        return await self._ask(FoundMemories, MEMORIES_SEARCH, _json(body))

    async def delete_memory(self, body: MemoryRef) -> None:
        """Delete a memory (a 404 when there is none)."""
        await self._send(MEMORIES_DELETE, _json(body))

    async def extraction(self, run_id: str) -> Extraction:
        """What run ``run_id`` was distilled into (a 404 until it was)."""
        return await self._ask(Extraction, extraction_path(run_id), http_method="GET")
