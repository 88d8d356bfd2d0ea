"""The pure rules behind crash-consistent runs: the ledger's leases and poison streaks, the
gateway's lane admission and reconciler pauses, effect keys and crash points. The same
rules run against the real mesh in tests/integration/test_crash_points.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents.mcp.util import MCPToolMetaContext
from agents.run_context import RunContextWrapper

from agentia import faults, names
from agentia.contracts.runner import LedgerRecord
from agentia.dapr import DaprError, StateItem
from agentia.events import Kind, Status
from agentia_gateway.reconcile import MAX_PAUSE_S, _pause
from agentia_gateway.run_store import (
    GRACE_S,
    Busy,
    RunStore,
    _admit,
    lane_key,
    run_key,
    shard_of,
)
from agentia_runner import ledger
from agentia_runner.attempts import unavailable
from agentia_runner.effects import RunEffects, effect_meta
from agentia_runner.ledger import Holder, Verdict

ME = Holder("host-a:8001", "boot-2")
EARLIER_ME = Holder("host-a:8001", "boot-1")
OTHER = Holder("host-b:8001", "boot-9")
NOW = 1_000_000.0
BASE = {"run_id": "r1", "agent_id": "assistant", "thread_id": "t1", "owner": None}


def held(by: Holder, lease_until: float, attempt: int = 1) -> dict[str, Any]:
    return {
        **BASE,
        "status": "running",
        "attempt": attempt,
        "holder": by.as_dict(),
        "lease_until": lease_until,
    }


def test_a_new_run_is_taken_and_a_final_one_is_done() -> None:
    assert ledger.verdict(None, ME, NOW) is Verdict.TAKE
    for status in ("success", "error", "interrupted"):
        assert ledger.verdict({**BASE, "status": status}, ME, NOW) is Verdict.DONE


def test_a_live_lease_is_waited_for_an_expired_one_taken_over() -> None:
    assert ledger.verdict(held(OTHER, NOW + 5), ME, NOW) is Verdict.WAIT_REMOTE
    assert ledger.verdict(held(OTHER, NOW - 0.1), ME, NOW) is Verdict.TAKE
    assert ledger.verdict(held(ME, NOW + 5), ME, NOW) is Verdict.WAIT_LOCAL


def test_an_earlier_life_of_this_replica_is_dead_whatever_its_lease() -> None:
    # Killed and restarted: the claim it left is taken at once, not after the lease.
    assert ledger.verdict(held(EARLIER_ME, NOW + 14), ME, NOW) is Verdict.TAKE


def test_released_and_pre_lease_records_are_taken() -> None:
    assert ledger.verdict(ledger.released(held(OTHER, NOW + 5)), ME, NOW) is Verdict.TAKE
    legacy = {**BASE, "status": "running", "attempt": 1}  # a record from before leases
    assert ledger.verdict(legacy, ME, NOW) is Verdict.TAKE


def test_a_claim_counts_the_attempt_and_holds_a_lease() -> None:
    first = ledger.claimed(None, BASE, ME, NOW)
    assert first["attempt"] == 1 and first["holder"] == ME.as_dict()
    assert first["lease_until"] == NOW + ledger.LEASE_S and first["status"] == "running"
    second = ledger.claimed(held(EARLIER_ME, NOW + 5), BASE, ME, NOW)
    assert second["attempt"] == 2
    renewed = ledger.renewed(second, progress=7, now=NOW + 5)
    assert renewed["lease_until"] == NOW + 5 + ledger.LEASE_S and renewed["progress"] == 7


def test_the_same_step_failing_three_times_in_a_row_is_poison() -> None:
    record = held(ME, NOW + 5)
    record, poison = ledger.failed(record, step=2, error="422 bad thread id")
    assert not poison and record["failures"]["count"] == 1 and record["holder"] is None
    record, poison = ledger.failed(record, step=2, error="422 bad thread id")
    assert not poison
    record, poison = ledger.failed(record, step=2, error="422 bad thread id")
    assert poison and record["failures"] == {"step": 2, "count": 3, "error": "422 bad thread id"}


def test_a_failure_at_another_step_starts_a_new_streak() -> None:
    record, _ = ledger.failed(held(ME, NOW), step=1, error="x")
    record, _ = ledger.failed(record, step=1, error="x")
    record, poison = ledger.failed(record, step=4, error="y")
    assert not poison and record["failures"]["count"] == 1


def test_the_final_record_keeps_its_event_before_it_is_published() -> None:
    done = ledger.final(held(ME, NOW), {"status": "success", "output": "42"}, last_seq=6)
    assert done["final_event"] == {"kind": "run.completed", "seq": 6}
    assert done["holder"] is None
    assert ledger.verdict(done, ME, NOW) is Verdict.DONE


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), True),
        (ConnectionError(), True),
        (DaprError(500, "x"), True),
        (DaprError(503, "x"), True),
        (DaprError(409, "superseded"), True),
        (DaprError(422, "bad thread id"), False),
        (DaprError(403, "denied"), False),
        (ValueError("a bug"), False),
    ],
)
def test_unavailability_is_told_from_a_bad_run(exc: BaseException, expected: bool) -> None:
    assert unavailable(exc) is expected


def test_a_run_takes_a_free_lane_or_queues_per_strategy() -> None:
    free = {"active": None, "queue": [], "last_status": None}
    assert _admit(free, "r2", "reject", set()) == (
        "start",
        {"active": "r2", "queue": [], "last_status": None},
    )
    busy = {"active": "r1", "queue": ["r0"], "last_status": None}
    with pytest.raises(Busy):
        _admit(busy, "r2", "reject", set())
    assert _admit(busy, "r2", "enqueue", set())[1]["queue"] == ["r0", "r2"]
    assert _admit(busy, "r2", "interrupt", set())[1]["queue"] == ["r2", "r0"]
    # A lane still naming a finished run (its release was cut short) is free.
    assert _admit(busy, "r2", "reject", {"r1"})[0] == "start"


def test_the_reconciler_looks_again_later_and_later() -> None:
    assert _pause(0) == GRACE_S
    assert _pause(1) == 2 * GRACE_S
    assert _pause(20) == MAX_PAUSE_S
    assert {shard_of(f"run-{i}") for i in range(200)} == set(range(16))


def test_effect_keys_follow_the_call_not_the_attempt() -> None:
    first, second = RunEffects("r1"), RunEffects("r1")  # two attempts of one run
    keys = [first.key("publish_event", {"topic": "t", "data": {"a": 1}}) for _ in range(2)]
    assert keys[0] != keys[1]  # the same call made twice in a run: two effects
    assert second.key("publish_event", {"data": {"a": 1}, "topic": "t"}) == keys[0]
    ctx = MCPToolMetaContext(
        run_context=RunContextWrapper(context=RunEffects("r9")),
        server_name="tool-mcp",
        tool_name="memory_save",
        arguments={"content": "x"},
    )
    meta = effect_meta(ctx)
    assert meta is not None and meta[names.MCP_EFFECT_KEY].startswith("r9:memory_save:")
    bare = MCPToolMetaContext(
        run_context=RunContextWrapper(context=None), server_name="s", tool_name="t", arguments={}
    )
    assert effect_meta(bare) is None


def test_crash_points_are_named_and_fire_only_when_armed() -> None:
    crash = faults.Faults(enabled=True)
    with pytest.raises(ValueError, match="not a crash point"):
        crash.arm("runner.nowhere", "t1")
    crash.arm(faults.RUNNER_AFTER_CLAIM, "t1")
    crash.hit(faults.RUNNER_AFTER_CLAIM, "r1", "t2")  # another thread: nothing happens
    crash.hit(faults.RUNNER_AFTER_FIRST_EVENT, "r1", "t1")  # another point: nothing happens
    faults.NO_FAULTS.hit(faults.RUNNER_AFTER_CLAIM, "t1")


class BulkOnly:
    """A state store answering bulk reads from a dict (the transport of RunStore's reads)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    async def get_bulk_state(self, store: str, keys: list[str]) -> dict[str, StateItem]:
        return {k: StateItem(key=k, value=self.data[k], etag="1") for k in keys if k in self.data}


@pytest.mark.parametrize(
    ("run_status", "queue", "seen"),
    [
        ("success", [], {"active": None, "queue": [], "last_status": "success"}),
        ("running", [], {"active": "r1", "queue": [], "last_status": None}),
        ("success", ["r2"], {"active": "r1", "queue": ["r2"], "last_status": None}),
    ],
)
def test_a_thread_whose_run_ended_reads_idle_before_its_lane_is_handed_over(
    run_status: str, queue: list[str], seen: dict[str, Any]
) -> None:
    lane = {"active": "r1", "queue": queue, "last_status": None}
    record = {**BASE, "status": run_status, "created_at": "t0", "updated_at": "t0"}
    store = BulkOnly({lane_key("t1"): lane, run_key("r1"): record})
    lanes = asyncio.run(RunStore(store, 60).lanes_as_seen(["t1", "t2"]))  # type: ignore[arg-type]
    assert lanes == {"t1": seen, "t2": {"active": None, "queue": [], "last_status": None}}


def test_the_ledger_records_read_as_agent_runners_contract() -> None:
    base = {"run_id": "r1", "agent_id": "a", "thread_id": "t1", "owner": "k1"}
    running = LedgerRecord.model_validate(ledger.claimed(None, base, ME, 100.0))
    assert running.status == Status.RUNNING and not running.final
    assert running.holder == ME.as_dict() and running.lease_until == 100.0 + ledger.LEASE_S
    assert running.model_extra and running.model_extra["progress"] == 0  # bookkeeping kept
    done = ledger.final(
        ledger.claimed(None, base, ME, 100.0), {"status": Status.SUCCESS, "output": "hi"}, 4
    )
    record = LedgerRecord.model_validate(done)
    assert record.final and record.final_event is not None
    assert (record.final_event.kind, record.final_event.seq) == (Kind.RUN_COMPLETED, 4)
    assert record.as_json()["status"] == "success" and record.thread_id == "t1"
    pending = LedgerRecord.model_validate({"run_id": "r2", "status": "pending"})
    assert not pending.final and pending.final_event is None
