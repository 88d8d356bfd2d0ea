"""Where the gateway keeps runs, through Dapr only (it owns no database):

- run records in the PostgreSQL state store (durable), ``gw-run:{run_id}``;
- the runs not yet seen final, ``gw-inflight:{shard}`` (run id -> when to look at it next),
  which the reconciler (``reconcile.py``) walks to finish what a crash left behind;
- each thread's lane in the same store, ``gw-lane:{thread_id}``: its one active run and the
  runs queued behind it — this is what makes ``multitask_strategy`` hold across replicas
  (every change is a compare-and-set on the ETag);
- each thread's run index, ``gw-thread-runs:{thread_id}``;
- each run's event log in Redis (cache store, with a TTL), one key per event,
  ``gw-run-log:{run_id}:{seq}``, written once (create-only, so a repeat is a no-op) and read
  by sequence in windows; every replica's streams read it, so any replica serves any stream.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agentia import names
from agentia.dapr import DaprClient, ETagMismatch
from agentia_gateway.run_record import RunRecord

RecordChange = Callable[[RunRecord | None], RunRecord | None]

ATTEMPTS = 25
LOG_WINDOW = 32  # a run's log is read this many events a call
INFLIGHT_SHARDS = 16  # spread over keys so that creating runs at once rarely contends
GRACE_S = 30.0  # a run is first looked at by the reconciler this long after it was created


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


def log_key(run_id: str, seq: int) -> str:
    return f"gw-run-log:{run_id}:{seq}"


def inflight_key(shard: int) -> str:
    return f"gw-inflight:{shard}"


def shard_of(run_id: str) -> int:
    return zlib.crc32(run_id.encode()) % INFLIGHT_SHARDS


def empty_lane() -> dict[str, Any]:
    return {"active": None, "queue": [], "last_status": None}


def handed_over(
    cur: dict[str, Any] | None, run_id: str, status: str
) -> tuple[dict[str, Any] | None, str | None]:
    """A thread's lane once ``run_id`` is done: the lane to write (None: leave it as it is)
    and the queued run that becomes active (None: none). A run that is not the active one
    only leaves the queue (cancelled while it waited); one the lane does not know changes
    nothing (a repeat)."""
    lane = {**empty_lane(), **(cur or {})}
    if lane["active"] != run_id:
        if run_id in lane["queue"]:
            return {**lane, "queue": [q for q in lane["queue"] if q != run_id]}, None
        return None, None
    queue = list(lane["queue"])
    nxt = queue.pop(0) if queue else None
    return {"active": nxt, "queue": queue, "last_status": status}, nxt


class RunStore:
    """The state operations; each read-modify-write retries on a lost ETag race."""

    def __init__(self, client: DaprClient, log_ttl_s: int) -> None:
        self.client, self.log_ttl_s = client, log_ttl_s

    async def get(self, run_id: str) -> RunRecord | None:
        item = await self.client.get_state(names.STATE_STORE, run_key(run_id))
        return RunRecord.model_validate(item.value) if item else None

    async def get_many(self, run_ids: list[str]) -> list[RunRecord]:
        found = await self.client.get_bulk_state(names.STATE_STORE, [run_key(r) for r in run_ids])
        return [
            RunRecord.model_validate(found[run_key(r)].value)
            for r in run_ids
            if run_key(r) in found
        ]

    async def update(self, run_id: str, change: RecordChange) -> RunRecord | None:
        """Apply ``change`` (None: leave as is) with compare-and-set; the record after."""

        def stored(cur: dict[str, Any] | None) -> dict[str, Any] | None:
            after = change(RunRecord.model_validate(cur) if cur else None)
            return None if after is None else after.as_json()

        found = await self._cas(names.STATE_STORE, run_key(run_id), stored)
        return None if found is None else RunRecord.model_validate(found)

    async def delete(self, run_id: str) -> None:
        await self.client.delete_state(names.STATE_STORE, run_key(run_id))
        for event in await self.read_log(run_id):
            await self.client.delete_state(names.CACHE_STORE, log_key(run_id, int(event["seq"])))

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
                await self.client.save_over(store, key, new, item, metadata=metadata)
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

    async def lanes_as_seen(self, thread_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The lanes as a reader should see them. Settling writes the run's record, then hands
        the lane over; in between, a lane whose active run is already final (and nothing
        queued behind it) reads as handed over, so a client that saw its run end never then
        sees the thread busy."""
        lanes = await self.lanes(thread_ids)
        ending = [
            lane["active"]
            for lane in lanes.values()
            if lane.get("active") and not lane.get("queue")
        ]
        records = {r.run_id: r for r in await self.get_many(ending)} if ending else {}
        for thread_id, lane in lanes.items():
            record = records.get(lane.get("active") or "")
            if record is not None and record.final:
                lanes[thread_id] = {**empty_lane(), "last_status": record.status}
        return lanes

    async def create(self, record: RunRecord, strategy: str) -> tuple[str, str | None]:
        """Record a new run in one transaction with everything that must come with it: its
        entry in the in-flight index and, on a thread, in the thread's run index and lane
        (its active run, or the queue behind it per ``strategy``). All or nothing: a crash
        leaves no run that the reconciler cannot see.

        Returns ("start", None) or ("queued", the active run's id); raises Busy for reject."""
        run_id, thread_id = record.run_id, record.thread_id
        shard = inflight_key(shard_of(run_id))
        keys = [shard] + ([index_key(thread_id), lane_key(thread_id)] if thread_id else [])
        finished: set[str] = set()
        for _ in range(ATTEMPTS):
            found = await self.client.get_bulk_state(names.STATE_STORE, keys)
            ops = [
                _op(shard, found, _with_entry(_value(found, shard), run_id, time.time() + GRACE_S)),
                {"key": run_key(run_id), "value": record.as_json(), "first_write": True},
            ]
            decision, active = "start", None
            if thread_id:
                lane = {**empty_lane(), **(found[keys[2]].value if keys[2] in found else {})}
                active = lane["active"]
                if active not in (None, run_id) and active not in finished:
                    # A lane can outlive its active run's release (a crash in between).
                    active_run = await self.get(active)
                    if active_run is None or active_run.final:
                        finished.add(active)
                decision, admitted = _admit(lane, run_id, strategy, finished)
                ops.append(_op(keys[1], found, _with_run(_value(found, keys[1]), run_id)))
                ops.append(_op(keys[2], found, admitted))
            try:
                await self.client.transact(names.STATE_STORE_CREATE, ops)
            except ETagMismatch:
                continue
            return decision, None if decision == "start" else active
        raise Contended(shard)

    # -- the in-flight index ----------------------------------------------------------------

    async def inflight(self) -> dict[int, tuple[dict[str, Any], str | None]]:
        """Every shard: its entries (run id -> {"next": epoch s, "tries": n}) and ETag."""
        keys = [inflight_key(i) for i in range(INFLIGHT_SHARDS)]
        found = await self.client.get_bulk_state(names.STATE_STORE, keys)
        return {
            i: (dict(found[k].value.get("runs", {})), found[k].etag)
            for i, k in enumerate(keys)
            if k in found
        }

    async def inflight_update(self, shard: int, changes: dict[str, dict[str, Any] | None]) -> None:
        """Set (or, for None, drop) entries of one shard."""

        def apply(cur: dict[str, Any] | None) -> dict[str, Any] | None:
            runs = dict((cur or {}).get("runs", {}))
            for run_id, entry in changes.items():
                if entry is None:
                    runs.pop(run_id, None)
                elif run_id in runs:  # never re-add one another replica dropped
                    runs[run_id] = entry
            return {"runs": runs}

        await self._cas(names.STATE_STORE, inflight_key(shard), apply)

    async def release(self, thread_id: str, run_id: str, status: str) -> str | None:
        """``run_id`` is done: the next queued run becomes active; its id (or None)."""
        chosen: list[str | None] = []

        def hand_over(cur: dict[str, Any] | None) -> dict[str, Any] | None:
            lane, nxt = handed_over(cur, run_id, status)
            chosen[:] = [nxt]
            return lane

        await self._cas(names.STATE_STORE, lane_key(thread_id), hand_over)
        return chosen[0] if chosen else None

    # -- event logs ---------------------------------------------------------------------------

    async def append_log(self, run_id: str, event: dict[str, Any], final: bool = False) -> None:
        """Add ``event`` to the run's log under its seq, once (a create-only write: the seq is
        its position in the run, so an attempt's repeat of an earlier attempt's event, or a
        redelivery, finds its place taken and is a no-op). A ``final`` event is never dropped:
        should an earlier attempt have gone further, it takes the first free place after."""
        ttl = {"ttlInSeconds": str(self.log_ttl_s)}
        seq = int(event["seq"])
        entry = {**event, "final": True} if final else dict(event)
        for _ in range(ATTEMPTS * 40):  # bounded: a run has far fewer events
            entry["seq"] = seq
            key = log_key(run_id, seq)
            try:
                await self.client.save_state(
                    names.CACHE_STORE, key, entry, first_write=True, metadata=ttl
                )
                return
            except ETagMismatch:
                if not final:
                    return
            there = await self.client.get_state(names.CACHE_STORE, key)
            if there is None:
                continue  # expired meanwhile: the place is free again
            if there.value.get("final"):
                return
            seq += 1
        raise Contended(log_key(run_id, seq))

    async def read_log(self, run_id: str, after: int = -1) -> list[dict[str, Any]]:
        """The run's events after seq ``after``, in order (a gap is an event on its way)."""
        events: list[dict[str, Any]] = []
        start = after + 1
        while True:
            keys = [log_key(run_id, seq) for seq in range(start, start + LOG_WINDOW)]
            found = await self.client.get_bulk_state(names.CACHE_STORE, keys)
            events += [dict(found[k].value) for k in keys if k in found]
            if keys[-1] not in found:
                return events
            start += LOG_WINDOW


def _value(found: dict[str, Any], key: str) -> dict[str, Any] | None:
    item = found.get(key)
    return dict(item.value) if item else None


def _op(key: str, found: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """A transaction's upsert of ``key`` over what was read (on its ETag, or create-only)."""
    item = found.get(key)
    return {
        "key": key,
        "value": value,
        "etag": item.etag if item else None,
        "first_write": not item,
    }


def _with_entry(cur: dict[str, Any] | None, run_id: str, next_at: float) -> dict[str, Any]:
    runs = dict((cur or {}).get("runs", {}))
    runs[run_id] = {"next": next_at, "tries": 0}
    return {"runs": runs}


def _with_run(cur: dict[str, Any] | None, run_id: str) -> dict[str, Any]:
    runs = list((cur or {}).get("runs", []))
    return {"runs": runs if run_id in runs else [*runs, run_id]}


def _admit(
    lane: dict[str, Any], run_id: str, strategy: str, finished: set[str]
) -> tuple[str, dict[str, Any]]:
    """The run takes the thread's lane, or queues behind its active run per ``strategy``."""
    active = lane["active"]
    queue = [q for q in lane["queue"] if q != run_id]
    if active in (None, run_id) or active in finished:
        return "start", {**lane, "active": run_id, "queue": queue}
    if strategy == "reject":
        raise Busy(active)
    queue = [run_id, *queue] if strategy in ("interrupt", "rollback") else [*queue, run_id]
    return "queued", {**lane, "queue": queue}
