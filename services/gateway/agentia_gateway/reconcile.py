"""The reconciler: finishes what a crash anywhere left behind, for every run the gateway
recorded and has not seen final.

Each gateway replica walks the in-flight index every ``EVERY_S`` (the work is idempotent, so
replicas need no coordination). A run is first looked at ``GRACE_S`` after it was created,
then again with a growing pause; for each, agent-runner's ledger decides:

- final there but not here (the final event was lost or is stuck): its final event goes
  into the run's log and the run is settled, which frees its thread for the next run;
- no ledger record, or one whose lease has expired (its request was never published, or
  the holder died with nobody left to redeliver it): the request is published again;
- running with a live lease: left alone.

A thread whose lane still names a run that is final (a crash between settling it and
handing the lane on) gets the lane handed on. Runs queued over budget are the drains' work.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import httpx

from agentia.contracts.runner import LedgerRecord
from agentia.dapr import DaprError
from agentia.events import Kind, Status
from agentia_gateway.errors import GatewayError
from agentia_gateway.run_flow import PUBLISH_TIMEOUT_S, RunFlow
from agentia_gateway.run_record import RunRecord
from agentia_gateway.run_store import GRACE_S, shard_of

log = logging.getLogger(__name__)
EVERY_S = 10.0
# A run still waiting is published again at most this far apart (a duplicate request costs a
# ledger read and an acknowledgement; a lost one costs the run).
MAX_PAUSE_S = 120.0
LOOKS_AT_ONCE = 8


def _pause(tries: int) -> float:
    return float(min(GRACE_S * 2**tries, MAX_PAUSE_S))


class Reconciler:
    """One gateway replica's reconciliation passes."""

    def __init__(self, flow: RunFlow) -> None:
        self.flow = flow
        self.passes = 0
        self.repaired: dict[str, int] = {"republished": 0, "settled": 0, "lanes": 0}
        self._broker_away = False  # a publish failed in the current pass

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(EVERY_S * random.uniform(0.8, 1.2))  # jitter: replicas apart
            try:
                await self.pass_once()
            except (DaprError, httpx.HTTPError, GatewayError) as exc:
                log.warning("reconciliation pass failed", extra={"why": repr(exc)})

    async def pass_once(self, now: float | None = None) -> dict[str, int]:
        """Look at every run that is due; returns what this pass did."""
        now = time.time() if now is None else now
        shards = await self.flow.store.inflight()
        due = {
            run_id: entry
            for runs, _etag in shards.values()
            for run_id, entry in runs.items()
            if float(entry.get("next", 0)) <= now
        }
        if not due:
            return {}
        records = {r.run_id: r for r in await self.flow.store.get_many(list(due))}
        changes: dict[int, dict[str, dict[str, Any] | None]] = {}
        done: dict[str, int] = {}
        looking = asyncio.Semaphore(LOOKS_AT_ONCE)
        self._broker_away = False

        async def look(run_id: str, entry: dict[str, Any]) -> None:
            record = records.get(run_id)
            if record is None or record.final:
                changes.setdefault(shard_of(run_id), {})[run_id] = None
                return
            async with looking:
                try:
                    action = await self._look(record, now)
                except (DaprError, httpx.HTTPError, GatewayError, TimeoutError) as exc:
                    # One run's look failing is no reason to leave the others unlooked.
                    log.warning(
                        "reconciling a run failed", extra={"run_id": run_id, "why": repr(exc)}
                    )
                    action = "failed"
            done[action] = done.get(action, 0) + 1
            tries = int(entry.get("tries", 0)) + (1 if action == "republished" else 0)
            changes.setdefault(shard_of(run_id), {})[run_id] = {
                "next": now + _pause(tries),
                "tries": tries,
            }

        await asyncio.gather(*(look(run_id, entry) for run_id, entry in due.items()))
        for shard, change in changes.items():
            await self.flow.store.inflight_update(shard, change)
        self.passes += 1
        for action in ("republished", "settled", "lanes"):
            self.repaired[action] += done.get(action, 0)
        if any(done.get(a) for a in ("republished", "settled", "lanes")):
            log.info("reconciled", extra={"done": done})
        return done

    async def _look(self, record: RunRecord, now: float) -> str:
        run_id, thread_id = record.run_id, record.thread_id
        if record.queued and record.status == Status.PENDING:
            return "queued"  # over budget, on runs.batch: a drain starts it
        if thread_id:
            lane = await self.flow.store.lane(thread_id)
            if lane.get("active") != run_id:
                return await self._unwedge(thread_id, lane) if run_id in lane["queue"] else "idle"
        ledger: LedgerRecord | None = None
        try:
            ledger = await self.flow.runner.ledger(run_id)
        except GatewayError as exc:
            if exc.status_code != 404:
                return "unreachable"  # agent-runner down: look again later
        if ledger is not None and ledger.final:
            await self._settle_from(record, ledger)
            return "settled"
        if ledger is not None and ledger.holder and ledger.lease_until > now:
            return "running"
        if self._broker_away:
            return "deferred"  # a publish failed in this pass already: next pass
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self.flow.publish(record)
        except (DaprError, httpx.HTTPError, TimeoutError):
            self._broker_away = True
            raise
        return "republished"

    async def _settle_from(self, record: RunRecord, ledger: LedgerRecord) -> None:
        """The ledger says the run ended: do what its final event would have done."""
        final = ledger.final_event
        keys = {"output", "error", "last_agent", "usage", "models", "owner"}
        data = ledger.model_dump(mode="json", include=keys)
        event = {
            "seq": final.seq if final else 0,
            "kind": final.kind if final else Kind.RUN_FAILED,
            "status": ledger.status,
            "data": data,
        }
        await self.flow.settle(record.run_id, ledger.status, data)
        await self.flow.store.append_log(record.run_id, event, final=True)

    async def _unwedge(self, thread_id: str, lane: dict[str, Any]) -> str:
        """A queued run waits behind the lane's active run: if that one is final (its
        settling was cut short), settle it again, which hands the lane on."""
        active = lane.get("active")
        if not active:
            return "waiting"
        current = await self.flow.store.get(active)
        if current is None:  # deleted: the next run's turn (published at its own look)
            await self.flow.store.release(thread_id, active, Status.INTERRUPTED)
            return "lanes"
        if current.final:
            await self.flow.settle(active, current.status, current.as_json())
            return "lanes"
        return "waiting"
