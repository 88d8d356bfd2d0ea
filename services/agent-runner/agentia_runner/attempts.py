"""Run requests on the mesh: claim the run in the ledger, keep the claim alive while the
attempt runs, record and publish the outcome.

A delivery is answered "done" only once its run is final, so the broker keeps the request
until then: a runner killed anywhere leaves a request that is delivered again and a claim
that the next attempt takes over (``ledger.py`` has the rules). Every event an attempt
publishes carries its position in the run, not the attempt, so a later attempt's repeat of
an earlier one's event is the same event to its consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from agentia import faults, names
from agentia.dapr import DaprClient, DaprError, ETagMismatch, StateItem
from agentia.events import Kind, RunEvent, RunRequested, Status
from agentia.faults import Faults
from agentia.service import keep_dead_letter_in
from agentia_runner import ledger
from agentia_runner.ledger import Holder, Verdict

log = logging.getLogger(__name__)
WAIT_S = 30.0  # how long a delivery waits for another holder before answering RETRY
# A DaprError with one of these statuses is the mesh being unavailable, not the run being bad.
UNAVAILABLE_STATUSES = frozenset({404, 408, 409, 425, 429})


def ledger_key(run_id: str) -> str:
    return f"run:{run_id}"


def cancel_key(run_id: str) -> str:
    return f"run-cancel:{run_id}"


def this_holder(app_port: int) -> Holder:
    """This process: the replica (``AGENTIA_REPLICA_ID``, else host name and port: a pod keeps
    its name across container restarts) and a boot id of its own."""
    replica = os.environ.get("AGENTIA_REPLICA_ID") or f"{socket.gethostname()}:{app_port}"
    return Holder(replica, uuid.uuid4().hex)


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says a dependency is down or busy (retry later, never poison)."""
    if isinstance(exc, httpx.TransportError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, DaprError):
        return exc.status >= 500 or exc.status in UNAVAILABLE_STATUSES
    return isinstance(
        exc,
        openai.APIConnectionError | openai.RateLimitError | openai.InternalServerError,
    )


Run = Callable[["Attempt"], Awaitable[dict[str, Any]]]


@dataclass
class Runner:
    """This process's share of the ledger: who it is, its run slots and attempts in flight."""

    client: DaprClient
    me: Holder
    slots: asyncio.Semaphore
    faults: Faults
    run: Run  # executes one attempt, returns the outcome's fields (handlers.py)
    attempts: dict[str, asyncio.Task[tuple[bool, dict[str, Any]] | None]] = field(
        default_factory=dict
    )
    # Runs cancelled through this replica (run id -> when): its own runs stop at their next
    # step without a read; other replicas' runs find the cancel in the cache store.
    cancels: dict[str, float] = field(default_factory=dict)

    def told_cancel(self, run_id: str, now: float) -> None:
        if len(self.cancels) > 10_000:
            self.cancels = {r: t for r, t in self.cancels.items() if now - t < 3600}
        self.cancels[run_id] = now


class EventSink:
    """Publishes a run's events numbered by their position in the run, in the run's trace."""

    def __init__(
        self,
        client: DaprClient,
        req: RunRequested,
        traceparent: str | None = None,
        crash: Faults = faults.NO_FAULTS,
    ) -> None:
        self.client, self.req, self.seq, self.crash = client, req, 0, crash
        self.headers = {"traceparent": traceparent} if traceparent else None

    async def __call__(
        self,
        kind: str,
        data: dict[str, Any],
        status: str = Status.RUNNING,
        event_id: str | None = None,
    ) -> None:
        fields = {
            "run_id": self.req.run_id,
            "kind": kind,
            "status": status,
            "seq": self.seq,
            "thread_id": self.req.thread_id,
            "data": data,
        }
        if event_id:
            fields["event_id"] = event_id
        await self.client.publish(
            names.TOPIC_RUNS_EVENTS, RunEvent.of(**fields), headers=self.headers
        )
        self.seq += 1
        keys = (self.req.run_id, self.req.thread_id)
        if self.seq == 1:
            self.crash.hit(faults.RUNNER_AFTER_FIRST_EVENT, *keys)
        if kind == Kind.TOOL_CALL:
            self.crash.hit(faults.RUNNER_IN_TOOL_CALL, *keys)


class Claim:
    """This process's hold on a run's ledger record. Every write re-reads the record and
    writes it back on its ETag only while it still names this holder and attempt: once
    another process has taken the run over, ``lost`` is set and nothing more is written."""

    def __init__(self, client: DaprClient, run_id: str, me: Holder, attempt: int) -> None:
        self.client, self.key, self.me, self.attempt = client, ledger_key(run_id), me, attempt
        self.lost = False
        self._lock = asyncio.Lock()

    def _mine(self, record: dict[str, Any]) -> bool:
        return record.get("holder") == self.me.as_dict() and record.get("attempt") == self.attempt

    async def write(
        self, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Apply ``change`` to the record; the record written, or None when the run is lost."""
        async with self._lock:
            for _ in range(3):
                if self.lost:
                    return None
                item = await self.client.get_state(names.STATE_STORE, self.key)
                if item is None or not self._mine(dict(item.value)):
                    self.lost = True
                    return None
                new = change(dict(item.value))
                try:
                    await self.client.save_state(names.STATE_STORE, self.key, new, etag=item.etag)
                    return new
                except ETagMismatch:
                    continue
            self.lost = True
            return None

    async def keep_alive(self, progress: Callable[[], int]) -> None:
        """Renew the lease until cancelled or lost. While the store is down the lease may
        lapse and another holder take over; the writes' checks keep one outcome."""
        while not self.lost:
            await asyncio.sleep(ledger.RENEW_S)
            try:
                await self.write(lambda r: ledger.renewed(r, progress(), time.time()))
            except (DaprError, httpx.HTTPError) as exc:
                log.warning("lease not renewed", extra={"key": self.key, "why": str(exc)})


@dataclass
class Attempt:
    """One attempt at a run, as ``Runner.run`` sees it."""

    req: RunRequested
    record: dict[str, Any]
    sink: EventSink
    claim: Claim

    @property
    def number(self) -> int:
        return int(self.record["attempt"])


async def handle(
    runner: Runner, req: RunRequested, traceparent: str | None, wait_s: float = WAIT_S
) -> tuple[bool, dict[str, Any] | None]:
    """Bring the run to a final state if this delivery can: (True, final record), or (False,
    the record as it is) when it is still being run elsewhere or its attempt failed."""
    key = ledger_key(req.run_id)
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        item = await runner.client.get_state(names.STATE_STORE, key)
        record = dict(item.value) if item else None
        seen = ledger.verdict(record, runner.me, time.time())
        remaining = deadline - asyncio.get_running_loop().time()
        if seen is Verdict.DONE and record is not None:
            # A repeat delivery of a finished run: its final event may not have gone out
            # (a crash between the record and the publish, or lost on the way), so it goes
            # again under the same id; every consumer drops a repeat.
            await publish_final(runner, record, traceparent)
            return True, record
        if seen is Verdict.WAIT_REMOTE:
            if remaining <= 0:
                return False, record
            await asyncio.sleep(min(1.0, remaining))
            continue
        task = runner.attempts.get(req.run_id)
        mine = task is None
        if task is None:
            fresh = item if seen is Verdict.TAKE else None
            task = asyncio.create_task(_take(runner, req, traceparent, fresh))
            runner.attempts[req.run_id] = task
            task.add_done_callback(lambda done: _forget(runner, req.run_id, done))
        try:
            # Shielded: a delivery the sidecar gives up on does not stop the run.
            if mine:
                result = await asyncio.shield(task)
            else:
                result = await asyncio.wait_for(asyncio.shield(task), max(remaining, 0.0))
        except TimeoutError:
            return False, record
        if mine and result is not None:
            return result


def _forget(runner: Runner, run_id: str, task: asyncio.Task[Any]) -> None:
    if runner.attempts.get(run_id) is task:  # not a later attempt registered since
        del runner.attempts[run_id]


async def _take(
    runner: Runner, req: RunRequested, traceparent: str | None, fresh: StateItem | None
) -> tuple[bool, dict[str, Any]] | None:
    """Claim the run and run one attempt; None when it was not ours to take after all.
    ``fresh``: the record as the delivery just read it, used when a slot is free at once
    (the claim is a compare-and-set on its ETag, so a stale read only loses the race)."""
    key = ledger_key(req.run_id)
    waited = runner.slots.locked()
    async with runner.slots:  # waiting for a slot holds no claim
        item = fresh
        if waited or item is None:
            item = await runner.client.get_state(names.STATE_STORE, key)
        record = dict(item.value) if item else None
        if ledger.verdict(record, runner.me, time.time()) not in (Verdict.TAKE, Verdict.WAIT_LOCAL):
            return None
        base = {
            "run_id": req.run_id,
            "agent_id": req.agent_id,
            "thread_id": req.thread_id,
            "owner": req.owner,
        }
        claimed = ledger.claimed(record, base, runner.me, time.time())
        try:
            await runner.client.save_over(names.STATE_STORE, key, claimed, item)
        except ETagMismatch:
            return None  # another delivery claimed it first: look again
        runner.faults.hit(faults.RUNNER_AFTER_CLAIM, req.run_id, req.thread_id)
        return await _attempt(runner, req, claimed, traceparent)


async def _attempt(
    runner: Runner, req: RunRequested, record: dict[str, Any], traceparent: str | None
) -> tuple[bool, dict[str, Any]]:
    claim = Claim(runner.client, req.run_id, runner.me, int(record["attempt"]))
    sink = EventSink(runner.client, req, traceparent, runner.faults)
    keeper = asyncio.create_task(claim.keep_alive(lambda: sink.seq))
    try:
        fields = await runner.run(Attempt(req, record, sink, claim))
    except Exception as exc:  # classified below: unavailability is retried, the rest counted
        keeper.cancel()
        return await _failed(runner, req, claim, record, sink.seq, exc)
    finally:
        keeper.cancel()
    if claim.lost:
        return False, record
    done = await claim.write(lambda r: ledger.final(r, fields, sink.seq))
    if done is None:
        return False, record
    runner.faults.hit(faults.RUNNER_AFTER_FINAL_RECORD, req.run_id, req.thread_id)
    await publish_final(runner, done, traceparent)
    return True, done


async def _failed(
    runner: Runner,
    req: RunRequested,
    claim: Claim,
    record: dict[str, Any],
    step: int,
    exc: Exception,
) -> tuple[bool, dict[str, Any]]:
    error = f"{type(exc).__name__}: {exc}"[:500]
    if claim.lost:
        return False, record
    if unavailable(exc):
        log.warning(
            "run attempt stopped: a dependency is unavailable; it is retried",
            extra={"run_id": req.run_id, "attempt": claim.attempt, "why": error},
        )
        # The store may be down too: then the lease lapses, or this replica's restart takes it.
        with contextlib.suppress(DaprError, httpx.HTTPError):
            await claim.write(ledger.released)
        return False, record
    kept = f"dlq:{names.dead_letter(names.TOPIC_RUNS_REQUESTED)}:{req.event_id}"
    poisoned: list[int] = []

    def change(current: dict[str, Any]) -> dict[str, Any]:
        after, poison = ledger.failed(current, step, error)
        if not poison:
            return after
        count = int(after["failures"]["count"])
        poisoned.append(count)
        why = ledger.dead_letter_error(step, count, error, kept)
        return ledger.final(after, {"status": Status.ERROR, "error": why}, step)

    log.warning("run attempt failed", extra={"run_id": req.run_id, "step": step, "why": error})
    after = await claim.write(change)
    if after is None or not poisoned:
        return False, after or record
    envelope = {
        "id": req.event_id,
        "topic": names.dead_letter(names.TOPIC_RUNS_REQUESTED),
        "data": req.model_dump(mode="json"),
    }
    await keep_dead_letter_in(runner.client, str(envelope["topic"]), envelope)
    await publish_final(runner, after, None)
    return True, after


async def publish_final(runner: Runner, record: dict[str, Any], traceparent: str | None) -> None:
    """Publish the run's final event (its id derived from the run id, so a repeat is one)."""
    final = record["final_event"]
    req = RunRequested(
        run_id=record["run_id"], agent_id=record["agent_id"], thread_id=record.get("thread_id")
    )
    sink = EventSink(runner.client, req, traceparent)
    sink.seq = int(final["seq"])
    # The owner rides on the final event: whoever counts usage (the gateway) needs no record
    # of its own for runs it did not start (a schedule's, a drain's); ``models`` splits the
    # usage by model, for per-model counts, prices and limits; the thread spares memory a
    # call back to learn it.
    keys = ("output", "error", "last_agent", "usage", "models", "owner", "thread_id")
    data = {k: record.get(k) for k in keys}
    await sink(final["kind"], data, status=record["status"], event_id=f"{record['run_id']}.final")
    runner.faults.hit(faults.RUNNER_AFTER_FINAL_PUBLISH, req.run_id, req.thread_id)
