"""Pull-based consumption: drain a topic's backlog in batches.

Some work should not start the moment it is asked for: nightly re-indexing, bulk
evaluations, anything a team would rather run off-peak or at a bounded pace. Such run
requests are published on ``runs.batch``, which no service is pushed. Its queue holds them
until a drain (a schedule of kind ``drain``, ``agentia drain``, or the Kubernetes CronJob)
takes them ``batch_size`` at a time: it starts each run of a batch on ``runs.requested``,
waits for the batch to finish, then takes the next, until the queue is empty.

No Dapr here: the loop runs against a :class:`Source` (the streaming subscription) and a
:class:`Sink` (publish, ask how runs went, keep a dead letter). Delivery stays at least
once and the effect exactly once: an event is acknowledged only after its run request was
published, and the run id makes a re-published request a duplicate agent-runner ignores.

A drain ends when the queue is empty on purpose: the sidecar hands a stream more events
than were asked for (its prefetch window), and Dapr 1.18 may leave the ones still
unanswered when a stream closes held unacknowledged until the sidecar's broker connection
closes (sometimes it hands them back at once; the watchdog restarts it when it does not).
Only an empty queue leaves none; an early stop (time limit, error) is reported as such.

Runs queued over their key's budget (the gateway's ``Prefer: over-budget=queue``) carry
their ``owner``: before starting one, the drain asks whether its key may start it now. A
run that may not is parked (kept durably, then acknowledged) so that the queue still ends
empty; each drain first publishes the parked runs back on the topic, so a parked run goes
round once per drain and starts at the first drain after its key's budget allows. Nothing
is dropped: a run whose key is gone is kept as a dead letter.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import pydantic

from agentia.contracts.scheduler import DrainReport, DrainRequest
from agentia.events import RunRequested

Answer = Literal["success", "retry", "drop"]
POLL_S = 0.5


class Delivery(Protocol):
    @property
    def id(self) -> str: ...

    def json(self) -> Any: ...


D = TypeVar("D", bound=Delivery)


class Source(Protocol[D]):
    """Where deliveries come from; it is answered with the deliveries it gave."""

    async def next(self, timeout: float) -> D | None: ...

    async def answer(self, event: D, answer: Answer) -> None: ...


@dataclass(frozen=True)
class Refusal:
    """Why a queued run may not start now."""

    reason: str
    final: bool = False  # it never may (its key is gone): kept as a dead letter


class Sink(Protocol):
    async def start_run(self, req: RunRequested) -> None: ...

    async def refused(self, req: RunRequested) -> Refusal | None: ...

    async def park(self, req: RunRequested) -> None: ...

    async def unpark(self) -> int: ...

    async def finished(self, run_ids: list[str]) -> set[str]: ...

    async def keep_dead_letter(self, event: Delivery, reason: str) -> None: ...


def run_request(data: Any, event_id: str) -> RunRequested:
    """The run request an event carries: a ``RunRequested`` body (event id defaulted to the
    CloudEvent's, so a re-delivered event is the same request)."""
    if not isinstance(data, dict):
        raise ValueError("the event's data is not a JSON object")
    body = {"event_id": event_id, **data}
    try:
        return RunRequested.model_validate(body)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "data"
        raise ValueError(f"{field}: {first['msg']}") from None


class _Tally:
    def __init__(self) -> None:
        self.received = self.started = self.dead = self.batches = self.unfinished = 0
        self.deferred = 0


async def _take_batch(
    source: Source[D], sink: Sink, req: DrainRequest, tally: _Tally, wait: float, deadline: float
) -> tuple[list[str], str | None]:
    """Start up to a batch of runs; returns their ids and why the drain must stop, if so."""
    runs: list[str] = []
    while len(runs) < req.batch_size:
        left = deadline - time.monotonic()
        if left <= 0:
            return runs, "time limit"
        event = await source.next(min(wait, left))
        wait = req.idle_s
        if event is None:
            return runs, "idle" if left > req.idle_s else "time limit"
        tally.received += 1
        try:
            request = run_request(_data(event), event.id)
        except ValueError as exc:
            await sink.keep_dead_letter(event, str(exc))
            await source.answer(event, "success")
            tally.dead += 1
            continue
        request.metadata.setdefault("drained_from", req.topic)
        try:
            refusal = await sink.refused(request) if request.owner else None
            if refusal is not None and refusal.final:
                await sink.keep_dead_letter(event, refusal.reason)
                await source.answer(event, "success")
                tally.dead += 1
                continue
            if refusal is not None:
                await sink.park(request)  # kept before this copy is acknowledged
                await source.answer(event, "success")
                tally.deferred += 1
                continue
            await sink.start_run(request)
        except Exception as exc:  # any failure leaves the event queued, unanswered
            return runs, f"error: {type(exc).__name__}: {str(exc)[:200]}"
        await source.answer(event, "success")
        tally.started += 1
        runs.append(request.run_id)
    return runs, None


async def _await_batch(sink: Sink, runs: list[str], timeout: float) -> int:
    """Wait for a batch's runs to finish; returns how many had not when time ran out."""
    pending = list(runs)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        done = await sink.finished(pending)
        pending = [r for r in pending if r not in done]
        if pending:
            await asyncio.sleep(POLL_S)
    return len(pending)


async def drain(
    source: Source[D], sink: Sink, req: DrainRequest, first_wait_s: float = 5.0
) -> DrainReport:
    """Drain ``req.topic`` batch by batch until its queue is empty (or time is up)."""
    started_at = time.monotonic()
    deadline = started_at + req.max_seconds
    tally = _Tally()
    # Runs parked by earlier drains go round again (a failure leaves them parked: it is
    # the sink's to log, and the next drain tries again).
    try:
        unparked = await sink.unpark()
    except Exception:
        unparked = 0
    # The first event may take a moment: the broker attaches a new consumer first.
    wait = max(first_wait_s, req.idle_s)
    while True:
        runs, stop = await _take_batch(source, sink, req, tally, wait, deadline)
        wait = req.idle_s
        if runs:
            tally.batches += 1
            left = max(0.0, min(req.batch_timeout_s, deadline - time.monotonic()))
            tally.unfinished += await _await_batch(sink, runs, left)
        if stop is not None:
            break
    return DrainReport(
        topic=req.topic,
        received=tally.received,
        started=tally.started,
        dead_lettered=tally.dead,
        batches=tally.batches,
        deferred=tally.deferred,
        unparked=unparked,
        unfinished=tally.unfinished,
        stopped=stop,
        took_s=round(time.monotonic() - started_at, 3),
    )


def _data(event: Delivery) -> Any:
    try:
        return event.json()
    except ValueError:
        raise ValueError("the event's data is not JSON") from None
