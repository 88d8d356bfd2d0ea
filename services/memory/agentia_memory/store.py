"""Session memory: threads and their items, with optimistic concurrency.

No Dapr here. Every change bumps the thread's ``version`` with a compare-and-set
(``UPDATE … WHERE version = :seen``); a writer that loses the race re-reads and tries
again, so two replicas appending to one thread never lose or overwrite an item.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, cast, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from agentia_memory.tables import Thread, ThreadItem

MAX_ATTEMPTS = 20


class NotFound(LookupError):
    """No such thread."""


class Conflict(RuntimeError):
    """Too many concurrent writers on one thread; the caller may retry."""


class Superseded(RuntimeError):
    """A later attempt of the same run has written to the thread: this attempt is stale."""


def _thread_dict(t: Thread) -> dict[str, Any]:
    return {
        "thread_id": t.thread_id,
        "metadata": t.meta,
        "version": t.version,
        "item_count": t.item_count,
        "created_at": t.created_at.isoformat(),
        "updated_at": t.updated_at.isoformat(),
    }


class ThreadStore:
    """Thread operations on one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, thread_id: str, metadata: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create the thread, or return the existing one (``created`` is False then)."""
        with Session(self.engine) as s:
            found = s.get(Thread, thread_id)
            if found is not None:
                return _thread_dict(found), False
            thread = Thread(thread_id=thread_id, meta=metadata)
            s.add(thread)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                raced = s.get(Thread, thread_id)
                if raced is None:  # created and deleted again meanwhile
                    raise Conflict(f"thread {thread_id}: deleted concurrently") from None
                return _thread_dict(raced), False
            s.refresh(thread)
            return _thread_dict(thread), True

    def get(self, thread_id: str) -> dict[str, Any]:
        with Session(self.engine) as s:
            thread = s.get(Thread, thread_id)
            if thread is None:
                raise NotFound(thread_id)
            return _thread_dict(thread)

    def delete(self, thread_id: str) -> None:
        with Session(self.engine) as s:
            s.execute(delete(ThreadItem).where(col(ThreadItem.thread_id) == thread_id))
            result = s.execute(delete(Thread).where(col(Thread.thread_id) == thread_id))
            s.commit()
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(thread_id)

    def items(
        self,
        thread_id: str,
        limit: int | None = None,
        run_id: str | None = None,
        attempt: int | None = None,
    ) -> list[dict[str, Any]]:
        """The latest ``limit`` items (all when None), oldest first. With ``run_id`` and
        ``attempt``, as that attempt sees the thread: without what earlier attempts of the
        same run left that it has not written again."""
        with Session(self.engine) as s:
            if s.get(Thread, thread_id) is None:
                raise NotFound(thread_id)
            query = select(col(ThreadItem.data)).where(col(ThreadItem.thread_id) == thread_id)
            if run_id is not None and attempt is not None:
                query = query.where(
                    or_(
                        col(ThreadItem.run_id).is_(None),
                        col(ThreadItem.run_id) != run_id,
                        col(ThreadItem.attempt) >= attempt,
                    )
                )
            query = query.order_by(col(ThreadItem.position).desc())
            if limit is not None:
                query = query.limit(limit)
            return list(reversed([row[0] for row in s.execute(query)]))

    def _bump(self, s: Session, thread_id: str, delta: int) -> tuple[int, int] | None:
        """Compare-and-set the version; the item count before the change, or None if raced."""
        thread = s.get(Thread, thread_id)
        if thread is None:
            raise NotFound(thread_id)
        seen, count = thread.version, thread.item_count
        if count + delta < 0:
            return (count, seen)
        result = s.execute(
            update(Thread)
            .where(col(Thread.thread_id) == thread_id, col(Thread.version) == seen)
            .values(version=seen + 1, item_count=count + delta, updated_at=datetime.now(UTC))
        )
        return (count, seen) if result.rowcount == 1 else None  # type: ignore[attr-defined]

    def add_items(self, thread_id: str, items: list[dict[str, Any]]) -> int:
        """Append ``items`` atomically; returns the new item count."""
        self.create(thread_id, {})
        for _ in range(MAX_ATTEMPTS):
            with Session(self.engine) as s:
                bumped = self._bump(s, thread_id, len(items))
                if bumped is None:
                    s.rollback()
                    continue
                start = bumped[0]
                s.add_all(
                    ThreadItem(thread_id=thread_id, position=start + i, data=item)
                    for i, item in enumerate(items)
                )
                try:
                    s.commit()
                except IntegrityError:
                    s.rollback()
                    continue
                return start + len(items)
        raise Conflict(f"thread {thread_id}: too many concurrent writers")

    def _newest_attempt(self, s: Session, thread_id: str, run_id: str) -> int | None:
        query = select(func.max(col(ThreadItem.attempt))).where(
            col(ThreadItem.thread_id) == thread_id, col(ThreadItem.run_id) == run_id
        )
        found = s.execute(query).scalar()
        return int(found) if found is not None else None

    def add_run_items(
        self, thread_id: str, run_id: str, attempt: int, first: int, items: list[dict[str, Any]]
    ) -> int:
        """Write a run's items at its positions ``first``, ``first + 1``… A position the run
        wrote before (an earlier attempt) is overwritten in place, a new one is appended; a
        write from an attempt older than one already seen is refused (Superseded). Returns
        the new item count."""
        self.create(thread_id, {})
        wanted = list(range(first, first + len(items)))
        for _ in range(MAX_ATTEMPTS):
            with Session(self.engine) as s:
                newest = self._newest_attempt(s, thread_id, run_id)
                if newest is not None and newest > attempt:
                    raise Superseded(f"run {run_id}: attempt {attempt} is older than {newest}")
                rows = s.execute(
                    select(ThreadItem).where(
                        col(ThreadItem.thread_id) == thread_id,
                        col(ThreadItem.run_id) == run_id,
                        col(ThreadItem.run_position).in_(wanted),
                    )
                ).scalars()
                written = {row.run_position: row for row in rows}
                pairs = list(zip(wanted, items, strict=True))
                fresh = [(p, item) for p, item in pairs if p not in written]
                bumped = self._bump(s, thread_id, len(fresh))  # every write moves the version
                if bumped is None:
                    s.rollback()
                    continue
                for p, item in pairs:
                    if p in written:
                        written[p].data, written[p].attempt = item, attempt
                start = bumped[0]
                s.add_all(
                    ThreadItem(
                        thread_id=thread_id,
                        position=start + i,
                        data=item,
                        run_id=run_id,
                        run_position=p,
                        attempt=attempt,
                    )
                    for i, (p, item) in enumerate(fresh)
                )
                try:
                    s.commit()
                except IntegrityError:
                    s.rollback()
                    continue
                return start + len(fresh)
        raise Conflict(f"thread {thread_id}: too many concurrent writers")

    def settle_run(self, thread_id: str, run_id: str, attempt: int, count: int) -> int:
        """Attempt ``attempt`` of the run wrote ``count`` items and is done: remove what
        earlier attempts left beyond them, closing the gap. Returns the new item count."""
        with Session(self.engine) as s:
            if s.get(Thread, thread_id) is None:
                raise NotFound(thread_id)
            # Lock the thread row first, so no append interleaves with the renumbering.
            s.execute(
                update(Thread)
                .where(col(Thread.thread_id) == thread_id)
                .values(version=col(Thread.version) + 1, updated_at=datetime.now(UTC))
            )
            newest = self._newest_attempt(s, thread_id, run_id)
            if newest is not None and newest > attempt:
                raise Superseded(f"run {run_id}: attempt {attempt} is older than {newest}")
            doomed = sorted(
                s.execute(
                    select(col(ThreadItem.position)).where(
                        col(ThreadItem.thread_id) == thread_id,
                        col(ThreadItem.run_id) == run_id,
                        or_(
                            col(ThreadItem.attempt) < attempt,
                            col(ThreadItem.run_position) >= count,
                        ),
                    )
                ).scalars()
            )
            total = int(s.get(Thread, thread_id).item_count)  # type: ignore[union-attr]
            if not doomed:
                s.commit()
                return total
            s.execute(
                delete(ThreadItem).where(
                    col(ThreadItem.thread_id) == thread_id,
                    col(ThreadItem.position).in_(doomed),
                )
            )
            later = s.execute(
                select(col(ThreadItem.position))
                .where(col(ThreadItem.thread_id) == thread_id, col(ThreadItem.position) > doomed[0])
                .order_by(col(ThreadItem.position))
            ).scalars()
            # Ascending, so each row moves into a position already freed.
            for new, old in enumerate(list(later), start=doomed[0]):
                s.execute(
                    update(ThreadItem)
                    .where(col(ThreadItem.thread_id) == thread_id, col(ThreadItem.position) == old)
                    .values(position=new)
                )
            s.execute(
                update(Thread)
                .where(col(Thread.thread_id) == thread_id)
                .values(item_count=total - len(doomed))
            )
            s.commit()
            return total - len(doomed)

    def pop_item(self, thread_id: str) -> dict[str, Any] | None:
        for _ in range(MAX_ATTEMPTS):
            with Session(self.engine) as s:
                thread = s.get(Thread, thread_id)
                if thread is None:
                    raise NotFound(thread_id)
                if thread.item_count == 0:
                    return None
                bumped = self._bump(s, thread_id, -1)
                if bumped is None:
                    s.rollback()
                    continue
                last = bumped[0] - 1
                item = s.get(ThreadItem, (thread_id, last))
                s.execute(
                    delete(ThreadItem).where(
                        col(ThreadItem.thread_id) == thread_id, col(ThreadItem.position) == last
                    )
                )
                s.commit()
                return item.data if item else None
        raise Conflict(f"thread {thread_id}: too many concurrent writers")

    def clear(self, thread_id: str) -> None:
        with Session(self.engine) as s:
            thread = s.get(Thread, thread_id)
            if thread is None:
                raise NotFound(thread_id)
            # Lock the thread row first (the UPDATE), so an append in flight commits before
            # the DELETE runs and none of its items survive the clear.
            s.execute(
                update(Thread)
                .where(col(Thread.thread_id) == thread_id)
                .values(version=col(Thread.version) + 1, item_count=0, updated_at=datetime.now(UTC))
            )
            s.execute(delete(ThreadItem).where(col(ThreadItem.thread_id) == thread_id))
            s.commit()

    def search(
        self,
        metadata: dict[str, Any] | None = None,
        ids: list[str] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Threads whose metadata contains ``metadata`` (JSONB ``@>``, which CockroachDB has
        too), newest first."""
        with Session(self.engine) as s:
            query = select(Thread)
            if metadata:
                query = query.where(cast(col(Thread.meta), JSONB).contains(metadata))
            if ids is not None:
                query = query.where(col(Thread.thread_id).in_(ids))
            query = query.order_by(col(Thread.created_at).desc(), col(Thread.thread_id))
            rows = s.execute(query.offset(offset).limit(limit)).scalars()
            return [_thread_dict(t) for t in rows]

    def patch(self, thread_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """Merge ``metadata`` into the thread's (compare-and-set on the version)."""
        for _ in range(MAX_ATTEMPTS):
            with Session(self.engine) as s:
                thread = s.get(Thread, thread_id)
                if thread is None:
                    raise NotFound(thread_id)
                seen, merged = thread.version, {**thread.meta, **metadata}
                result = s.execute(
                    update(Thread)
                    .where(col(Thread.thread_id) == thread_id, col(Thread.version) == seen)
                    .values(meta=merged, version=seen + 1, updated_at=datetime.now(UTC))
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    s.rollback()
                    continue
                s.commit()
                return self.get(thread_id)
        raise Conflict(f"thread {thread_id}: too many concurrent writers")

    def copy(self, thread_id: str, new_id: str) -> dict[str, Any]:
        """A new thread with the metadata and items of ``thread_id``, in one transaction."""
        with Session(self.engine) as s:
            source = s.get(Thread, thread_id)
            if source is None:
                raise NotFound(thread_id)
            items = s.execute(
                select(col(ThreadItem.position), col(ThreadItem.data)).where(
                    col(ThreadItem.thread_id) == thread_id
                )
            ).all()
            s.add(Thread(thread_id=new_id, meta=dict(source.meta), item_count=len(items)))
            s.flush()
            s.add_all(ThreadItem(thread_id=new_id, position=p, data=d) for p, d in items)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                raise Conflict(f"thread {new_id} exists already") from None
        return self.get(new_id)

    def truncate(self, thread_id: str, count: int) -> int:
        """Keep the first ``count`` items (a rolled-back run's items go); the new count."""
        with Session(self.engine) as s:
            thread = s.get(Thread, thread_id)
            if thread is None:
                raise NotFound(thread_id)
            keep = int(min(count, thread.item_count))
            s.execute(
                update(Thread)
                .where(col(Thread.thread_id) == thread_id)
                .values(
                    version=col(Thread.version) + 1, item_count=keep, updated_at=datetime.now(UTC)
                )
            )
            s.execute(
                delete(ThreadItem).where(
                    col(ThreadItem.thread_id) == thread_id, col(ThreadItem.position) >= keep
                )
            )
            s.commit()
            return keep

    def count(self) -> int:
        with Session(self.engine) as s:
            return int(s.execute(select(func.count()).select_from(Thread)).scalar_one())
