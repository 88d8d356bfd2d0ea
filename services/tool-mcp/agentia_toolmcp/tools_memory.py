"""Memory tools: search and save long-term memories through the memory service (Dapr
service invocation via tool-mcp's own sidecar). No FastAPI here."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import ToolAnnotations
from pydantic import Field

from agentia.contracts import memory as memory_api
from agentia.contracts.memory import MemoryKind as Kind
from agentia_toolmcp.server import ToolServer
from agentia_toolmcp.sidecar import Sidecar, tool_call

Namespace = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@:-]+$")]],
    Field(min_length=1, max_length=10),
]

SEARCH = ToolAnnotations(
    title="Search memories", readOnlyHint=True, idempotentHint=True, openWorldHint=False
)
# Saving merges into a similar memory (or the same slot), so saving twice changes nothing more.
SAVE = ToolAnnotations(
    title="Save a memory",
    readOnlyHint=False,
    destructiveHint=True,
    idempotentHint=True,
    openWorldHint=False,
)


def _brief(item: memory_api.StoreItem) -> dict[str, Any]:
    out = {
        "namespace": item.namespace,
        "key": item.key,
        "content": item.value.get("content"),
        "kind": item.value.get("kind"),
        "updated_at": item.updated_at,
    }
    if isinstance(item, memory_api.ScoredItem):
        out["score"] = item.score
    return out


def _memory(sidecar: Sidecar, app_id: str, what: str, timeout: float) -> memory_api.MemoryClient:
    return memory_api.MemoryClient(tool_call(sidecar, what=what, timeout=timeout), app_id)


def register(server: ToolServer, sidecar: Sidecar, memory_app_id: str) -> None:
    """Add memory_search and memory_save, calling app ``memory_app_id``."""

    async def memory_search(
        query: Annotated[str, Field(min_length=1, max_length=8000)],
        namespace: Namespace = ["memories"],  # noqa: B006 (pydantic copies defaults)
        kind: Kind | None = None,
        limit: Annotated[int, Field(ge=1, le=50)] = 5,
    ) -> dict[str, Any]:
        """Search long-term memories by meaning. `namespace` is a prefix, e.g. ["memories",
        "alice"]; results are ranked by similarity to `query`."""
        body = memory_api.SearchMemories(
            namespace_prefix=namespace, query=query, kind=kind, limit=limit
        )
        memory = _memory(
            sidecar, memory_app_id, "memory_search", server.timeout_for("memory_search")
        )
        found = await memory.search_memories(body)
        return {"memories": [_brief(m) for m in found.memories]}

    async def memory_save(
        content: Annotated[str, Field(min_length=1, max_length=2000)],
        namespace: Namespace = ["memories", "agents"],  # noqa: B006
        kind: Kind = "semantic",
        slot: Annotated[str | None, Field(max_length=128)] = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Save a fact worth remembering. A similar memory in the same namespace is updated
        instead of duplicated; `slot` names a single-valued fact (e.g. "home_city")."""
        body = memory_api.SaveMemory(
            namespace=namespace, content=content, kind=kind, slot=slot, metadata=metadata or {}
        )
        memory = _memory(sidecar, memory_app_id, "memory_save", server.timeout_for("memory_save"))
        saved = await memory.save_memory(body)
        return {"key": saved.key, "created": saved.created, **_brief(saved.item)}

    server.add_tool(memory_search, annotations=SEARCH)
    server.add_tool(memory_save, annotations=SAVE)
