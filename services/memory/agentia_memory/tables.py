"""Tables of the memory service (SQLModel). Kept CockroachDB-compatible: no serial ids,
no PostgreSQL-only column types; the one PostgreSQL-only statement (an advisory lock
around migrations) is in ``db.py``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, String
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
    """One item of a thread (a message, a tool call or its result), at a fixed position."""

    __tablename__ = "thread_items"

    thread_id: str = Field(
        sa_column=Column(
            String(128), ForeignKey("threads.thread_id", ondelete="CASCADE"), primary_key=True
        )
    )
    position: int = Field(primary_key=True)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=_now)
