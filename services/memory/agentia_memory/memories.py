"""Long-term memory (semantic, episodic, procedural), kept as store items as LangMem keeps
them in the LangGraph store: value ``{"kind", "content", "slot", "metadata", "source",
"revisions"}``, embedded on ``content``. No Dapr here.

Saving merges rather than piling up: a memory with the same ``slot`` (a single-valued fact)
or, failing that, one of the same kind whose content is at least ``merge_threshold``
similar, is updated in place (``revisions`` counts the updates).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import SQLModel

from agentia.contracts.memory_store import MEMORY_KINDS as KINDS
from agentia_memory.extraction import Candidate, Extractor
from agentia_memory.kv import Item, KVStore
from agentia_memory.kv_rules import InvalidInput, check_namespace, ns_path
from agentia_memory.tables import MemoryExtraction

INDEX = ["content"]
EXTRACTIONS = SQLModel.metadata.tables[str(MemoryExtraction.__tablename__)]


@dataclass
class ExtractionResult:
    run_id: str
    done_before: bool = False
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "done_before": self.done_before,
            "created": self.created,
            "updated": self.updated,
        }


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"kind: must be one of {KINDS}, got {kind!r}")


class MemoryStore:
    """Memories over a :class:`KVStore`."""

    def __init__(self, kv: KVStore, merge_threshold: float = 0.88) -> None:
        self.kv = kv
        self.merge_threshold = merge_threshold

    def _match(
        self, c: Connection, namespace: list[str], kind: str, content: str, slot: str | None
    ) -> Item | None:
        """The memory that ``content`` should update, if any."""
        if slot:
            same = self.kv.search(
                namespace,
                filter={"kind": kind, "slot": slot},
                limit=1,
                exact_namespace=True,
                refresh_ttl=False,
                conn=c,
            )
            if same:
                return same[0]
        similar = self.kv.search(
            namespace,
            filter={"kind": kind},
            query=content,
            limit=1,
            exact_namespace=True,
            refresh_ttl=False,
            conn=c,
        )
        if similar and similar[0].score is not None and similar[0].score >= self.merge_threshold:
            return similar[0]
        return None

    def save(
        self,
        namespace: list[str],
        content: str,
        kind: str = "semantic",
        *,
        key: str | None = None,
        slot: str | None = None,
        metadata: dict[str, Any] | None = None,
        source: dict[str, Any] | None = None,
        conn: Connection | None = None,
    ) -> tuple[str, bool]:
        """Create or merge a memory; returns its key and whether it was created."""
        check_namespace(namespace)
        check_kind(kind)
        if not content.strip():
            raise InvalidInput("content: must not be empty")
        if conn is None:
            with self.kv.engine.begin() as c:
                self._lock(c, namespace)
                return self.save(
                    namespace,
                    content,
                    kind,
                    key=key,
                    slot=slot,
                    metadata=metadata,
                    source=source,
                    conn=c,
                )
        if key is not None:
            try:
                existing: Item | None = self.kv.get(namespace, key, refresh_ttl=False)
            except LookupError:
                existing = None
        else:
            existing = self._match(conn, namespace, kind, content, slot)
        value = {
            "kind": kind,
            "content": content,
            "slot": slot,
            "metadata": {
                **(existing.value.get("metadata") or {} if existing else {}),
                **(metadata or {}),
            },
            "source": source or (existing.value.get("source") if existing else None),
            "revisions": int(existing.value.get("revisions", 0)) + 1 if existing else 0,
        }
        target = existing.key if existing else key or uuid.uuid4().hex
        self.kv.put(namespace, target, value, index=INDEX, conn=conn)
        return target, existing is None

    @staticmethod
    def _lock(c: Connection, namespace: list[str]) -> None:
        # PostgreSQL-only: writers of one namespace take turns, so two extractions cannot
        # both miss each other's new memory and insert a duplicate.
        c.execute(text("SELECT pg_advisory_xact_lock(hashtext(:ns))"), {"ns": ns_path(namespace)})

    def search(
        self,
        namespace_prefix: list[str],
        query: str | None = None,
        *,
        kind: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[Item]:
        conditions = dict(filter or {})
        if kind is not None:
            check_kind(kind)
            conditions["kind"] = kind
        found: list[Item] = self.kv.search(
            namespace_prefix, filter=conditions, query=query, limit=limit, offset=offset
        )
        return found

    def extract_run(
        self,
        run_id: str,
        thread_id: str | None,
        namespace: list[str],
        items: list[dict[str, Any]],
        extractor: Extractor,
    ) -> ExtractionResult:
        """Distil a finished run's conversation into memories, once per run id: the marker
        row and every memory it produced commit in one transaction, or none of them does."""
        result = ExtractionResult(run_id)
        with self.kv.engine.begin() as c:
            # The marker goes in first: a second delivery of the same run waits on its
            # primary key until this transaction ends, then finds it and does nothing.
            marked = c.execute(
                insert(EXTRACTIONS)
                .values(
                    run_id=run_id, thread_id=thread_id, memory_keys=[], created_at=datetime.now(UTC)
                )
                .on_conflict_do_nothing(index_elements=[EXTRACTIONS.c.run_id])
            )
            if marked.rowcount == 0:
                result.done_before = True
                return result
            self._lock(c, namespace)
            existing = [
                {k: i.value.get(k) for k in ("kind", "content", "slot")}
                for i in self.kv.search(namespace, limit=50, exact_namespace=True, conn=c)
            ]
            for cand in extractor.extract(items, existing):
                key, created = self._save_candidate(c, namespace, cand, run_id, thread_id)
                (result.created if created else result.updated).append(key)
            c.execute(
                EXTRACTIONS.update()
                .where(EXTRACTIONS.c.run_id == run_id)
                .values(memory_keys=result.created + result.updated)
            )
        return result

    def _save_candidate(
        self, c: Connection, namespace: list[str], cand: Candidate, run_id: str, tid: str | None
    ) -> tuple[str, bool]:
        return self.save(
            namespace,
            cand.content,
            cand.kind,
            slot=cand.slot,
            source={"run_id": run_id, "thread_id": tid},
            conn=c,
        )

    def extracted(self, run_id: str) -> dict[str, Any] | None:
        with self.kv.engine.connect() as c:
            row = c.execute(select(EXTRACTIONS).where(EXTRACTIONS.c.run_id == run_id)).first()
        if row is None:
            return None
        return {"run_id": row.run_id, "thread_id": row.thread_id, "memory_keys": row.memory_keys}


def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@:-]", "_", text)[:64] or "_"


def memory_namespace(thread_metadata: dict[str, Any], thread_id: str) -> list[str]:
    """Where a thread's memories go: per user (thread metadata ``user_id`` or ``user``),
    else per thread, as LangMem's ``("memories", "{user_id}")``."""
    user = thread_metadata.get("user_id") or thread_metadata.get("user")
    if isinstance(user, str) and user.strip():
        return ["memories", _label(user)]
    return ["memories", "thread", _label(thread_id)]
