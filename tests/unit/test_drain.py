"""The drain loop on its own: bounded batches, idle stops, dead letters, and an event whose
run could not be started left unanswered (so the broker keeps it)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from agentia import names
from agentia.contracts.scheduler import DrainRequest, DrainTarget, ScheduleRequest
from agentia.events import RunRequested
from agentia_scheduler.draining import Answer, Delivery, Refusal, drain, run_request


@dataclass
class Pulled:
    id: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Queue:
    items: list[Pulled]
    answers: dict[str, Answer] = field(default_factory=dict)

    async def next(self, timeout: float) -> Delivery | None:
        if not self.items:
            await asyncio.sleep(min(timeout, 0.01))
            return None
        return self.items.pop(0)

    async def answer(self, event: Delivery, answer: Answer) -> None:
        self.answers[event.id] = answer


@dataclass
class Sink:
    fail_on: str | None = None
    never_finish: bool = False
    runs: list[RunRequested] = field(default_factory=list)
    dead: list[tuple[str, str]] = field(default_factory=list)
    asked: list[list[str]] = field(default_factory=list)

    over: set[str] = field(default_factory=set)  # keys over budget
    gone: set[str] = field(default_factory=set)  # keys revoked
    queue: Queue | None = None  # where parked runs go back to
    parked: list[RunRequested] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    async def refused(self, req: RunRequested) -> Refusal | None:
        self.checked.append(req.run_id)
        if req.owner in self.gone:
            return Refusal(f"key {req.owner} is gone", final=True)
        return Refusal(f"budget of {req.owner} used up") if req.owner in self.over else None

    async def park(self, req: RunRequested) -> None:
        self.parked.append(req)

    async def unpark(self) -> int:
        assert self.queue is not None
        for req in self.parked:
            body = json.dumps(req.model_dump(mode="json")).encode()
            self.queue.items.append(Pulled(f"again-{req.run_id}", body))
        count, self.parked = len(self.parked), []
        return count

    async def start_run(self, req: RunRequested) -> None:
        if req.run_id == self.fail_on:
            raise ConnectionError("broker away")
        self.runs.append(req)

    async def finished(self, run_ids: list[str]) -> set[str]:
        self.asked.append(list(run_ids))
        return set() if self.never_finish else set(run_ids)

    async def keep_dead_letter(self, event: Delivery, reason: str) -> None:
        self.dead.append((event.id, reason))


def runs(n: int) -> list[Pulled]:
    return [
        Pulled(f"e{i}", json.dumps({"run_id": f"r{i}", "agent_id": "assistant"}).encode())
        for i in range(n)
    ]


def test_a_drain_takes_the_backlog_batch_by_batch_until_the_queue_is_empty() -> None:
    queue, sink = Queue(runs(7)), Sink()
    req = DrainRequest(batch_size=3, idle_s=0.1)
    report = asyncio.run(drain(queue, sink, req, first_wait_s=0.1))
    assert (report.received, report.started, report.batches) == (7, 7, 3)
    assert report.stopped == "idle" and report.unfinished == 0
    # Each batch waited for before the next was taken.
    assert sink.asked == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]
    assert set(queue.answers.values()) == {"success"} and len(queue.answers) == 7
    assert all(r.metadata["drained_from"] == names.TOPIC_RUNS_BATCH for r in sink.runs)
    assert sink.runs[0].event_id == "e0", "a re-delivered event is the same request"


def test_unreadable_events_are_kept_and_acknowledged() -> None:
    items = [*runs(2), Pulled("bad", b"not json"), Pulled("noagent", b'{"run_id": "x"}')]
    queue, sink = Queue(items), Sink()
    report = asyncio.run(drain(queue, sink, DrainRequest(idle_s=0.1), first_wait_s=0.1))
    assert (report.received, report.started, report.dead_lettered) == (4, 2, 2)
    assert dict(sink.dead)["noagent"].startswith("agent_id")
    assert queue.answers["bad"] == "success", "kept, so acknowledged"


def test_a_batch_that_does_not_finish_is_reported_and_the_drain_goes_on() -> None:
    queue, sink = Queue(runs(4)), Sink(never_finish=True)
    req = DrainRequest(batch_size=2, batch_timeout_s=1, idle_s=0.1)
    report = asyncio.run(drain(queue, sink, req, first_wait_s=0.1))
    assert (report.started, report.batches, report.unfinished) == (4, 2, 4)


def test_an_event_whose_run_cannot_start_stays_queued_and_ends_the_drain() -> None:
    queue, sink = Queue(runs(4)), Sink(fail_on="r1")
    report = asyncio.run(drain(queue, sink, DrainRequest(), first_wait_s=0.1))
    assert report.started == 1 and report.stopped.startswith("error: ConnectionError")
    assert "e1" not in queue.answers, "unanswered: the broker redelivers it"


def test_run_request_names_the_bad_field() -> None:
    with pytest.raises(ValueError, match="agent_id"):
        run_request({"run_id": "r"}, "e")
    with pytest.raises(ValueError, match="JSON object"):
        run_request([1, 2], "e")


def test_drain_targets_and_requests_are_validated() -> None:
    with pytest.raises(ValueError, match="not drained"):
        DrainRequest(topic=names.TOPIC_RUNS_REQUESTED)
    req = ScheduleRequest.model_validate(
        {"interval_s": 60, "target": {"kind": "drain", "batch_size": 10}}
    )
    assert isinstance(req.target, DrainTarget) and req.target.batch_size == 10
    with pytest.raises(ValueError, match="batch_timeout_s"):
        DrainRequest(batch_timeout_s=500)  # longer than the sidecar waits for an answer


def owned(run_id: str, owner: str | None) -> Pulled:
    body = {"run_id": run_id, "agent_id": "assistant", "owner": owner}
    return Pulled(f"e-{run_id}", json.dumps(body).encode())


def test_runs_over_their_keys_budget_are_parked_and_go_round_at_each_drain() -> None:
    """A queued run whose key is over budget is parked (the queue still ends empty); the
    next drain publishes it again first, and it starts once its key may."""
    queue = Queue([owned("a", "poor"), owned("b", "rich"), owned("c", None), owned("d", "poor")])
    sink = Sink(over={"poor"}, queue=queue)
    report = asyncio.run(drain(queue, sink, DrainRequest(batch_size=10, idle_s=0.1), 0.1))
    assert [r.run_id for r in sink.runs] == ["b", "c"]
    assert (report.deferred, report.started, report.stopped) == (2, 2, "idle")
    assert [r.run_id for r in sink.parked] == ["a", "d"] and not queue.items
    assert set(queue.answers.values()) == {"success"}  # every copy taken was answered
    assert "c" not in sink.checked  # a run with no owner has no budget to ask about
    # Still over budget: they go round once and are parked again.
    again = asyncio.run(drain(queue, sink, DrainRequest(idle_s=0.1), 0.1))
    assert (again.unparked, again.deferred, again.started) == (2, 2, 0)
    sink.over.clear()  # the next day, or the next minute
    last = asyncio.run(drain(queue, sink, DrainRequest(idle_s=0.1), 0.1))
    assert (last.unparked, last.started) == (2, 2) and not sink.parked
    assert [r.run_id for r in sink.runs] == ["b", "c", "a", "d"]


def test_a_run_whose_key_is_gone_is_kept_as_a_dead_letter() -> None:
    queue = Queue([owned("a", "revoked"), owned("b", "rich")])
    sink = Sink(gone={"revoked"}, queue=queue)
    report = asyncio.run(drain(queue, sink, DrainRequest(idle_s=0.1), 0.1))
    assert [r.run_id for r in sink.runs] == ["b"] and report.dead_lettered == 1
    assert sink.dead == [("e-a", "key revoked is gone")]
