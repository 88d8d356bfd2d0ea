"""Tables of the memory service (SQLModel). Kept CockroachDB-compatible: no serial ids,
no PostgreSQL-only column types; the one PostgreSQL-only statement (an advisory lock
around migrations) is in ``db.py``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class Thread(SQLModel, table=True):
    """A conversation. ``version`` increases on every change (optimistic concurrency)."""

    __tablename__ = "threads"

    thread_id: str = Field(primary_key=True, max_length=128)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON))
    version: int = Field(default=0)
    item_count: int = Field(default=0)
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)


class ThreadItem(SQLModel, table=True):
    """One item of a thread (a message, a tool call or its result), at a fixed position.

    Items a run wrote carry the run id, their position in the run and the attempt that wrote
    them: a later attempt of the same run overwrites the same keys instead of adding its own
    copy (exactly one input and one answer per run, however often the runner died)."""

    __tablename__ = "thread_items"
    __table_args__ = (
        Index("ux_thread_items_run", "thread_id", "run_id", "run_position", unique=True),
    )

    thread_id: str = Field(
        sa_column=Column(
            String(128), ForeignKey("threads.thread_id", ondelete="CASCADE"), primary_key=True
        )
    )
    position: int = Field(primary_key=True)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=_now)
    run_id: str | None = Field(default=None, sa_column=Column(String(128), nullable=True))
    run_position: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    attempt: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))


# JSONB on PostgreSQL (and CockroachDB, where JSON is JSONB): equality and containment
# filters on values need it; plain JSON elsewhere.
JSON_DOC = JSON().with_variant(JSONB(), "postgresql")


class StoreItem(SQLModel, table=True):
    """A key-value item of the store (memories are items too). ``ns_path`` is the namespace's
    labels joined by "/" (labels cannot contain "/"), so a prefix is a LIKE on one column."""

    __tablename__ = "store_items"
    __table_args__ = (
        Index("ix_store_items_expires_at", "expires_at"),
        Index("ix_store_items_ns_path", "ns_path"),
    )

    ns_path: str = Field(sa_column=Column(String(660), primary_key=True))
    key: str = Field(sa_column=Column(String(256), primary_key=True))
    namespace: list[str] = Field(sa_column=Column(JSON_DOC, nullable=False))
    depth: int = Field(sa_column=Column(Integer, nullable=False))
    value: dict[str, Any] = Field(sa_column=Column(JSON_DOC, nullable=False))
    # float32 little-endian; NULL when the item is not indexed for semantic search.
    embedding: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    ttl_minutes: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    expires_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    created_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class MemoryExtraction(SQLModel, table=True):
    """One run whose conversation was distilled into memories: the idempotency record,
    written in the same transaction as the memories it produced."""

    __tablename__ = "memory_extractions"

    run_id: str = Field(primary_key=True, max_length=128)
    thread_id: str | None = Field(default=None, max_length=128)
    memory_keys: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
