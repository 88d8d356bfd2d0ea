"""memory's internal store and long-term memory API (``/internal/store…``,
``/internal/memories…``): where to ask, what to send and what comes back. The gateway's
``/store`` endpoints and tool-mcp's memory tools call it; memory's ``kv_routes.py`` and
``memory_routes.py`` serve it from these models, and its domain code (``kv.py``) keeps the
limits defined here.

Store: ``POST internal/store/items/put`` (``PutItem`` → 204), ``…/items/get`` (``GetItem`` →
``StoreItem``), ``…/items/delete`` (``ItemRef`` → 204), ``…/items/search`` (``SearchItems`` →
``ScoredItems``), ``POST internal/store/namespaces`` (``ListNamespaces`` → ``Namespaces``).
Memories: ``POST internal/memories`` (``SaveMemory`` → ``SavedMemory``), ``…/search``
(``SearchMemories`` → ``FoundMemories``), ``…/delete`` (``MemoryRef`` → 204) and
``GET internal/memories/extractions/{run_id}`` (→ ``Extraction``, 404 until distilled).
A missing item is a 404, a value over the size limit a 413, a broken rule a 422 naming the
field, embeddings away a 503."""

from __future__ import annotations

import urllib.parse
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

STORE: Final = "internal/store"
STORE_PUT: Final = f"{STORE}/items/put"
STORE_GET: Final = f"{STORE}/items/get"
STORE_DELETE: Final = f"{STORE}/items/delete"
STORE_SEARCH: Final = f"{STORE}/items/search"
STORE_NAMESPACES: Final = f"{STORE}/namespaces"
MEMORIES: Final = "internal/memories"
MEMORIES_SEARCH: Final = f"{MEMORIES}/search"
MEMORIES_DELETE: Final = f"{MEMORIES}/delete"

MAX_DEPTH: Final = 10  # labels in a namespace
MAX_KEY: Final = 256  # characters in a key
MAX_TTL_MINUTES: Final = 60 * 24 * 365
MAX_QUERY: Final = 8000  # characters in a semantic query
MAX_CONTENT: Final = 2000  # characters in a memory

MemoryKind = Literal["semantic", "episodic", "procedural"]
MEMORY_KINDS: Final[tuple[MemoryKind, ...]] = ("semantic", "episodic", "procedural")
Namespace = list[str]


def extraction_path(run_id: str) -> str:
    """Whether (and into what) run ``run_id`` was distilled."""
    return f"{MEMORIES}/extractions/{urllib.parse.quote(run_id, safe=':')}"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- store requests -------------------------------------------------------------------


class PutItem(_Request):
    """Insert or replace an item (its ``created_at`` survives a replace)."""

    namespace: Namespace = Field(min_length=1, max_length=MAX_DEPTH, description="Labels.")
    key: str = Field(min_length=1, max_length=MAX_KEY, description="Key in the namespace.")
    value: dict[str, Any] = Field(description="A JSON object, at most 64 KiB serialised.")
    ttl: float | None = Field(
        default=None, gt=0, le=MAX_TTL_MINUTES, description="Minutes to live; None = forever."
    )
    index: list[str] | Literal[False] | None = Field(
        default=None,
        description="What to embed: None = the whole value, field paths, or false = nothing.",
    )


class ItemRef(_Request):
    """One item, by namespace and key (delete)."""

    namespace: Namespace = Field(min_length=1, max_length=MAX_DEPTH, description="Labels.")
    key: str = Field(min_length=1, max_length=MAX_KEY, description="Key in the namespace.")


class GetItem(ItemRef):
    """Read one item."""

    refresh_ttl: bool = Field(default=True, description="Push the item's expiry out.")


class SearchItems(_Request):
    """Items under a namespace prefix that pass the filter: newest first, or most similar to
    ``query`` first."""

    namespace_prefix: Namespace | None = Field(
        default=None, max_length=MAX_DEPTH, description="Labels the namespace starts with."
    )
    filter: dict[str, Any] | None = Field(default=None, description="Equality or $ops.")
    limit: int = Field(default=10, ge=1, le=1000, description="Page size.")
    offset: int = Field(default=0, ge=0, description="Items to skip.")
    query: str | None = Field(default=None, max_length=MAX_QUERY, description="Semantic query.")
    refresh_ttl: bool = Field(default=True, description="Push the expiry of what is read out.")


class ListNamespaces(_Request):
    """Distinct namespaces (cut to ``max_depth`` labels), sorted, one page."""

    prefix: Namespace | None = Field(
        default=None, max_length=MAX_DEPTH, description="Labels they start with."
    )
    suffix: Namespace | None = Field(
        default=None, max_length=MAX_DEPTH, description="Labels they end with."
    )
    max_depth: int | None = Field(default=None, ge=1, description="Cut to this many labels.")
    limit: int = Field(default=100, ge=1, le=1000, description="Page size.")
    offset: int = Field(default=0, ge=0, description="Namespaces to skip.")


# -- memory requests ------------------------------------------------------------------


class SaveMemory(_Request):
    """Save a memory; without ``key`` it merges into a similar one (or the same slot)."""

    namespace: Namespace = Field(
        min_length=1, max_length=MAX_DEPTH, description="Where it goes, e.g. memories/{user}."
    )
    content: str = Field(min_length=1, max_length=MAX_CONTENT, description="The memory, in words.")
    kind: MemoryKind = Field(default="semantic", description="semantic, episodic or procedural.")
    key: str | None = Field(
        default=None, min_length=1, max_length=MAX_KEY, description="Replace this memory."
    )
    slot: str | None = Field(default=None, max_length=128, description="Single-valued fact.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Merged into its own.")


class SearchMemories(_Request):
    """Memories under a namespace prefix: most similar to ``query`` first, else newest."""

    namespace_prefix: Namespace = Field(
        min_length=1, max_length=MAX_DEPTH, description="Labels the namespace starts with."
    )
    query: str | None = Field(default=None, max_length=MAX_QUERY, description="Semantic query.")
    kind: MemoryKind | None = Field(default=None, description="Only memories of this kind.")
    filter: dict[str, Any] | None = Field(
        default=None, description="On value fields, e.g. {'metadata.topic': 'travel'}."
    )
    limit: int = Field(default=10, ge=1, le=1000, description="Page size.")
    offset: int = Field(default=0, ge=0, description="Memories to skip.")


class MemoryRef(_Request):
    """One memory, by namespace and key (delete)."""

    namespace: Namespace = Field(min_length=1, max_length=MAX_DEPTH, description="Labels.")
    key: str = Field(min_length=1, max_length=MAX_KEY, description="The memory's key.")


# -- answers --------------------------------------------------------------------------


class StoreItem(BaseModel):
    """An item of the store. A memory is one whose value is ``{"kind", "content", "slot",
    "metadata", "source", "revisions"}``."""

    namespace: Namespace = Field(description="Its namespace.")
    key: str = Field(description="Its key.")
    value: dict[str, Any] = Field(description="The item.")
    created_at: str = Field(description="When it was created (ISO 8601).")
    updated_at: str = Field(description="When it last changed (ISO 8601).")


class ScoredItem(StoreItem):
    """An item found by a search."""

    score: float | None = Field(
        description="Similarity to the query (None: no query, or the item is not embedded)."
    )


class ScoredItems(BaseModel):
    """Items found."""

    items: list[ScoredItem] = Field(description="The items, best or newest first.")


class Namespaces(BaseModel):
    """Namespaces found."""

    namespaces: list[Namespace] = Field(description="The namespaces, sorted.")


class SavedMemory(BaseModel):
    """A memory saved: made, or merged into an existing one."""

    key: str = Field(description="Its key.")
    created: bool = Field(description="False: an existing memory was updated.")
    item: StoreItem = Field(description="The memory as stored now.")


class FoundMemories(BaseModel):
    """Memories found."""

    memories: list[ScoredItem] = Field(description="The memories, best or newest first.")


class Extraction(BaseModel):
    """A finished run distilled into memories (once per run)."""

    run_id: str = Field(description="The run.")
    thread_id: str | None = Field(description="Its thread (None: it had none).")
    memory_keys: list[str] = Field(description="The memories it made or updated.")
