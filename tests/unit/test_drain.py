"""The drain loop on its own: bounded batches, idle stops, dead letters, and an event whose
run could not be started left unanswered (so the broker keeps it)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from agentia import names
from agentia.events import RunRequested
from agentia_scheduler.draining import Answer, Delivery, drain, run_request
from agentia_scheduler.schedules import DrainRequest, DrainTarget, ScheduleRequest


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
