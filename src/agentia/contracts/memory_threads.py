"""memory's internal thread API (``/internal/threads…``): where to ask, what to send and
what comes back. The gateway (threads, runs on threads) and agent-runner (a run's session, the
chat workflows' transcripts) call it; memory's ``routes.py`` serves it from these models.

``POST internal/threads`` (``ThreadCreate`` → ``ThreadCreated``), ``POST …/search``
(``ThreadSearch`` → ``ThreadList``), ``GET|PATCH|DELETE …/{id}`` (→ ``Thread``, 204),
``POST …/{id}/copy`` (``ThreadCopy`` → ``Thread``), ``GET|POST|DELETE …/{id}/items``
(``ItemsQuery`` → ``ThreadItems``, ``ItemsAdd`` → ``ItemCount``, 204),
``POST …/{id}/items/truncate`` (``Truncate`` → ``ItemCount``), ``POST …/{id}/items/pop``
(→ ``PoppedItem``) and ``POST …/{id}/runs/{run_id}/settle`` (``RunSettle`` → ``ItemCount``).
A missing thread is a 404, a lost race or a stale attempt a 409, a bad field a 422."""

from __future__ import annotations

import json
import urllib.parse
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from agentia.contracts import ID_PATTERN

THREADS: Final = "internal/threads"
THREADS_SEARCH: Final = "internal/threads/search"
MAX_ITEMS_PER_WRITE: Final = 500
MAX_ITEMS_READ: Final = 10_000


def _segment(value: str) -> str:
    # ':' is valid in a path segment and in ids (ID_PATTERN): such ids go through unchanged.
    return urllib.parse.quote(value, safe=":")


def thread_path(thread_id: str) -> str:
    """The thread (GET, PATCH, DELETE)."""
    return f"{THREADS}/{_segment(thread_id)}"


def items_path(thread_id: str, query: ItemsQuery | None = None) -> str:
    """The thread's items (POST appends, DELETE clears; GET reads, with ``query``)."""
    path = f"{thread_path(thread_id)}/items"
    params = query.model_dump(exclude_none=True) if query is not None else {}
    return f"{path}?{urllib.parse.urlencode(params, safe=':')}" if params else path


def copy_path(thread_id: str) -> str:
    return f"{thread_path(thread_id)}/copy"


def truncate_path(thread_id: str) -> str:
    return f"{thread_path(thread_id)}/items/truncate"


def pop_path(thread_id: str) -> str:
    return f"{thread_path(thread_id)}/items/pop"


def settle_path(thread_id: str, run_id: str) -> str:
    return f"{thread_path(thread_id)}/runs/{_segment(run_id)}/settle"


def _storable(value: Any) -> Any:
    """PostgreSQL's JSON cannot hold NUL characters: refuse them with a reason (422)."""
    if "\\u0000" in json.dumps(value):
        raise ValueError("text may not contain NUL (\\u0000) characters")
    return value


# What memory keeps as JSON: refused (422) when it holds a NUL character.
Storable = AfterValidator(_storable)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests -------------------------------------------------------------------------


class ThreadCreate(_Request):
    """Create a thread (idempotent when ``thread_id`` is given: the existing one is returned,
    its metadata unchanged)."""

    thread_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="Client-chosen id (else a new one)."
    )
    metadata: Annotated[dict[str, Any], Storable] = Field(
        default_factory=dict, description="Free-form metadata."
    )


class RunKey(_Request):
    """Which run writes the items, and where in the run they go (see ``ItemsAdd``)."""

    run_id: str = Field(pattern=ID_PATTERN, description="The run that writes them.")
    attempt: int = Field(ge=1, description="The run's attempt that writes them.")
    position: int = Field(ge=0, description="Position in the run of the first item.")


class ItemsAdd(_Request):
    """Items to append, in order (Responses-API input items: messages, tool calls, results).
    With ``run``, the items are keyed by the run and their position in it: written again,
    they replace what that position held instead of being appended twice; a write from an
    attempt older than one already seen is refused (409)."""

    items: Annotated[list[dict[str, Any]], Storable] = Field(
        max_length=MAX_ITEMS_PER_WRITE, description="Items."
    )
    run: RunKey | None = Field(default=None, description="The run writing them, if any.")


class ItemsQuery(_Request):
    """Which of a thread's items to read (the query of ``GET …/{id}/items``). With
    ``run_id`` and ``attempt``, as that attempt of the run sees them: without what earlier
    attempts left that it has not written again."""

    limit: int | None = Field(
        default=None, ge=1, le=MAX_ITEMS_READ, description="The latest this many (None: all)."
    )
    run_id: str | None = Field(
        default=None, pattern=ID_PATTERN, max_length=128, description="The reading run."
    )
    attempt: int | None = Field(default=None, ge=1, description="The reading run's attempt.")


class RunSettle(_Request):
    """An attempt of a run is done writing ``count`` items to the thread: what earlier
    attempts left beyond them goes."""

    attempt: int = Field(ge=1, description="The attempt.")
    count: int = Field(ge=0, description="How many items this attempt wrote.")


class ThreadSearch(_Request):
    """Find threads by metadata (containment) or ids, newest first."""

    metadata: Annotated[dict[str, Any] | None, Storable] = Field(
        default=None, description="Metadata to contain."
    )
    ids: list[str] | None = Field(default=None, max_length=1000, description="Only these ids.")
    limit: int = Field(default=10, ge=1, le=1000, description="Page size.")
    offset: int = Field(default=0, ge=0, le=1_000_000, description="Threads to skip.")


class ThreadPatch(_Request):
    """Metadata to merge into the thread's."""

    metadata: Annotated[dict[str, Any], Storable] = Field(
        description="Keys to set; others are kept."
    )


class ThreadCopy(_Request):
    """Copy a thread (metadata and items) under a new id."""

    thread_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="The new id (else a new one)."
    )


class Truncate(_Request):
    """Keep only the first ``count`` items (a rolled-back run's items go)."""

    count: int = Field(ge=0, description="Items to keep.")


# -- answers --------------------------------------------------------------------------


class Thread(BaseModel):
    """A thread as memory keeps it (its items are read apart)."""

    thread_id: str = Field(description="The thread's id.")
    metadata: dict[str, Any] = Field(description="Its metadata.")
    version: int = Field(description="Bumped by every change (compare-and-set).")
    item_count: int = Field(description="How many items it holds.")
    created_at: str = Field(description="When it was created (ISO 8601).")
    updated_at: str = Field(description="When it last changed (ISO 8601).")


class ThreadCreated(Thread):
    """The thread a create made or found."""

    created: bool = Field(description="False: it existed already (returned unchanged).")


class ThreadList(BaseModel):
    """Threads found, newest first."""

    threads: list[Thread] = Field(description="The threads.")


class ThreadItems(BaseModel):
    """A thread's items, oldest first."""

    items: list[dict[str, Any]] = Field(description="The items.")


class ItemCount(BaseModel):
    """How many items the thread holds after the change."""

    item_count: int = Field(description="The thread's item count.")


class PoppedItem(BaseModel):
    """The item taken off the end of a thread."""

    item: dict[str, Any] | None = Field(description="The last item (None: it was empty).")
