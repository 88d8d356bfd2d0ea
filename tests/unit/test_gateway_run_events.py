"""How run events move a run's record: only a pending run starts; the log keeps each event once."""

from __future__ import annotations

from agentia.events import RunEvent
from agentia_gateway.run_events import log_entry, started
from agentia_gateway.run_record import RunRecord


def record(status: str) -> RunRecord:
    return RunRecord.model_validate(
        {"run_id": "r1", "agent_id": "a", "status": status, "created_at": "t0", "updated_at": "t0"}
    )


def test_a_pending_run_starts() -> None:
    after = started(record("pending"))
    assert after is not None and after.status == "running" and after.updated_at != "t0"
    assert after.model_dump(exclude={"status", "updated_at"}) == record("pending").model_dump(
        exclude={"status", "updated_at"}
    )


def test_started_changes_nothing_else() -> None:
    assert started(None) is None
    for status in ("running", "success", "error", "interrupted"):
        assert started(record(status)) is None


def test_log_entry_keeps_seq_kind_status_and_data() -> None:
    event = RunEvent(
        run_id="r1", kind="message.delta", status="running", seq=7, data={"delta": "hi"}
    )
    assert log_entry(event) == {
        "seq": 7,
        "kind": "message.delta",
        "status": "running",
        "data": {"delta": "hi"},
    }
