"""How run events move a run's record: only a pending run starts; the log keeps each event once."""

from __future__ import annotations

from agentia.events import RunEvent
from agentia_gateway.run_events import log_entry, started


def test_a_pending_run_starts() -> None:
    record = started({"run_id": "r1", "status": "pending", "updated_at": "t0"})
    assert record is not None and record["status"] == "running" and record["updated_at"] != "t0"


def test_started_changes_nothing_else() -> None:
    assert started(None) is None
    for status in ("running", "success", "error", "interrupted"):
        assert started({"run_id": "r1", "status": status}) is None


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
