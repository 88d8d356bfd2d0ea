"""Where the gateway keeps runs, through Dapr only (it owns no database):

- run records in the PostgreSQL state store (durable), ``gw-run:{run_id}``;
- each thread's lane in the same store, ``gw-lane:{thread_id}``: its one active run and the
  runs queued behind it — this is what makes ``multitask_strategy`` hold across replicas
  (every change is a compare-and-set on the ETag);
- each thread's run index, ``gw-thread-runs:{thread_id}``;
- each run's event log in Redis (cache store, with a TTL), ``gw-run-log:{run_id}``, which
  every replica's streams read, so any replica serves any stream.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agentia import names
from agentia.dapr import DaprClient, ETagMismatch

FINAL = {"success", "error", "interrupted", "timeout"}
ATTEMPTS = 25


class Busy(Exception):
    """The thread has an active run and the strategy is reject."""

    def __init__(self, active: str) -> None:
        super().__init__(active)
        self.active = active


class Contended(Exception):
    """Too many writers raced on one record; the caller may retry."""


def now() -> str:
    return datetime.now(UTC).isoformat()


def run_key(run_id: str) -> str:
    return f"gw-run:{run_id}"


def lane_key(thread_id: str) -> str:
    return f"gw-lane:{thread_id}"


def index_key(thread_id: str) -> str:
    return f"gw-thread-runs:{thread_id}"


def log_key(run_id: str) -> str:
    return f"gw-run-log:{run_id}"


def empty_lane() -> dict[str, Any]:
    return {"active": None, "queue": [], "last_status": None}


class RunStore:
    """The state operations; each read-modify-write retries on a lost ETag race."""

    def __init__(self, client: DaprClient, log_ttl_s: int) -> None:
        self.client, self.log_ttl_s = client, log_ttl_s

    async def get(self, run_id: str) -> dict[str, Any] | None:
        item = await self.client.get_state(names.STATE_STORE, run_key(run_id))
        return dict(item.value) if item else None

    async def get_many(self, run_ids: list[str]) -> list[dict[str, Any]]:
        found = await self.client.get_bulk_state(names.STATE_STORE, [run_key(r) for r in run_ids])
        return [dict(found[run_key(r)].value) for r in run_ids if run_key(r) in found]

    async def create(self, record: dict[str, Any]) -> bool:
        """Save a new record; False when the run id exists already."""
        try:
            await self.client.save_state(
                names.STATE_STORE, run_key(record["run_id"]), record, first_write=True
            )
            return True
        except ETagMismatch:
            return False

    async def update(
        self, run_id: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Apply ``change`` (None: leave as is) with compare-and-set; the record after."""
        return await self._cas(names.STATE_STORE, run_key(run_id), change)

    async def delete(self, run_id: str) -> None:
        await self.client.delete_state(names.STATE_STORE, run_key(run_id))
        await self.client.delete_state(names.CACHE_STORE, log_key(run_id))

    async def _cas(
        self,
        store: str,
        key: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        for _ in range(ATTEMPTS):
            item = await self.client.get_state(store, key)
            current = dict(item.value) if item else None
            new = change(current)
            if new is None:
                return current
            try:
                await self.client.save_state(
                    store,
                    key,
                    new,
                    etag=item.etag if item else None,
                    first_write=item is None,
                    metadata=metadata,
                )
                return new
            except ETagMismatch:
                continue
        raise Contended(key)

    # -- a thread's runs -----------------------------------------------------------------

    async def index_add(self, thread_id: str, run_id: str) -> None:
        def add(cur: dict[str, Any] | None) -> dict[str, Any] | None:
            runs = list((cur or {}).get("runs", []))
            return None if run_id in runs else {"runs": [*runs, run_id]}

        await self._cas(names.STATE_STORE, index_key(thread_id), add)

    async def index_remove(self, thread_id: str, run_id: str) -> None:
        def remove(cur: dict[str, Any] | None) -> dict[str, Any] | None:
            runs = list((cur or {}).get("runs", []))
            return {"runs": [r for r in runs if r != run_id]} if run_id in runs else None

        await self._cas(names.STATE_STORE, index_key(thread_id), remove)

    async def index(self, thread_id: str) -> list[str]:
        item = await self.client.get_state(names.STATE_STORE, index_key(thread_id))
        return list(item.value.get("runs", [])) if item else []

    async def forget_thread(self, thread_id: str) -> None:
        for key in (index_key(thread_id), lane_key(thread_id)):
            await self.client.delete_state(names.STATE_STORE, key)

    # -- lanes: one active run per thread ---------------------------------------------------

    async def lane(self, thread_id: str) -> dict[str, Any]:
        item = await self.client.get_state(names.STATE_STORE, lane_key(thread_id))
        return dict(item.value) if item else empty_lane()

    async def lanes(self, thread_ids: list[str]) -> dict[str, dict[str, Any]]:
        keys = [lane_key(t) for t in thread_ids]
        found = await self.client.get_bulk_state(names.STATE_STORE, keys)
        return {
            t: dict(found[lane_key(t)].value) if lane_key(t) in found else empty_lane()
            for t in thread_ids
        }

    async def claim(self, thread_id: str, run_id: str, strategy: str) -> tuple[str, str | None]:
        """Make ``run_id`` the thread's active run, or queue it per ``strategy``.

        Returns ("start", None) or ("queued", the active run's id); raises Busy for reject."""
        outcome: list[Any] = []
        finished: set[str] = set()

        def take(cur: dict[str, Any] | None) -> dict[str, Any] | None:
            lane = {**empty_lane(), **(cur or {})}
            outcome.clear()
            active = lane["active"]
            if active in (None, run_id) or active in finished:
                outcome.extend(["start", None])
                return {
                    **lane,
                    "active": run_id,
                    "queue": [q for q in lane["queue"] if q != run_id],
                }
            if strategy == "reject":
                raise Busy(active)
            outcome.extend(["queued", active])
            queue = [q for q in lane["queue"] if q != run_id]
            queue = [run_id, *queue] if strategy in ("interrupt", "rollback") else [*queue, run_id]
            return {**lane, "queue": queue}

        for _ in range(3):
            await self._cas(names.STATE_STORE, lane_key(thread_id), take)
            if outcome[0] == "queued":
                # A lane can outlive its active run's release (a crash in between): check.
                active_run = await self.get(outcome[1])
                if active_run is None or active_run.get("status") in FINAL:
                    finished.add(outcome[1])
                    continue
            break
        return outcome[0], outcome[1]

    async def release(self, thread_id: str, run_id: str, status: str) -> str | None:
        """``run_id`` is done: the next queued run becomes active; its id (or None)."""
        chosen: list[str | None] = []

        def hand_over(cur: dict[str, Any] | None) -> dict[str, Any] | None:
            lane = {**empty_lane(), **(cur or {})}
            chosen.clear()
            if lane["active"] != run_id:
                if run_id in lane["queue"]:
                    return {**lane, "queue": [q for q in lane["queue"] if q != run_id]}
                return None
            queue = list(lane["queue"])
            nxt = queue.pop(0) if queue else None
            chosen.append(nxt)
            return {"active": nxt, "queue": queue, "last_status": status}

        await self._cas(names.STATE_STORE, lane_key(thread_id), hand_over)
        return chosen[0] if chosen else None

    # -- event logs ---------------------------------------------------------------------------

    async def append_log(self, run_id: str, event: dict[str, Any]) -> None:
        """Add ``event`` to the run's log, in seq order, once (a redelivery is a no-op)."""

        def add(cur: dict[str, Any] | None) -> dict[str, Any] | None:
            events = list((cur or {}).get("events", []))
            if any(e["seq"] == event["seq"] for e in events):
                return None
            events.append(event)
            events.sort(key=lambda e: int(e["seq"]))
            return {"events": events}

        ttl = {"ttlInSeconds": str(self.log_ttl_s)}
        await self._cas(names.CACHE_STORE, log_key(run_id), add, metadata=ttl)

    async def read_log(self, run_id: str) -> list[dict[str, Any]]:
        item = await self.client.get_state(names.CACHE_STORE, log_key(run_id))
        return list(item.value.get("events", [])) if item else []
