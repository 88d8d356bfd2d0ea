"""Memory tools: search and save long-term memories through the memory service (Dapr
service invocation via tool-mcp's own sidecar). No FastAPI here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.types import ToolAnnotations
from pydantic import Field

from agentia_toolmcp.server import ToolServer
from agentia_toolmcp.sidecar import Sidecar, call_service

Kind = Literal["semantic", "episodic", "procedural"]
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


def _brief(item: dict[str, Any]) -> dict[str, Any]:
    value = item.get("value") or {}
    out = {
        "namespace": item.get("namespace"),
        "key": item.get("key"),
        "content": value.get("content"),
        "kind": value.get("kind"),
        "updated_at": item.get("updated_at"),
    }
    if "score" in item:
        out["score"] = item["score"]
    return out


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
        body = {"namespace_prefix": namespace, "query": query, "kind": kind, "limit": limit}
        found = await call_service(
            sidecar,
            memory_app_id,
            "internal/memories/search",
            body,
            what="memory_search",
            timeout=server.timeout_for("memory_search"),
        )
        return {"memories": [_brief(m) for m in (found or {}).get("memories", [])]}

    async def memory_save(
        content: Annotated[str, Field(min_length=1, max_length=2000)],
        namespace: Namespace = ["memories", "agents"],  # noqa: B006
        kind: Kind = "semantic",
        slot: Annotated[str | None, Field(max_length=128)] = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Save a fact worth remembering. A similar memory in the same namespace is updated
        instead of duplicated; `slot` names a single-valued fact (e.g. "home_city")."""
        body = {
            "namespace": namespace,
            "content": content,
            "kind": kind,
            "slot": slot,
            "metadata": metadata or {},
        }
        saved = await call_service(
            sidecar,
            memory_app_id,
            "internal/memories",
            body,
            what="memory_save",
            timeout=server.timeout_for("memory_save"),
        )
        return {"key": saved["key"], "created": saved["created"], **_brief(saved["item"])}

    server.add_tool(memory_search, annotations=SEARCH)
    server.add_tool(memory_save, annotations=SAVE)
