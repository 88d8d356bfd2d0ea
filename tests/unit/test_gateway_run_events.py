"""A run's status only moves forward: duplicates and late events change nothing."""

from __future__ import annotations

from agentia.events import RunEvent
from agentia_gateway.run_events import advance


def _event(seq: int, status: str = "running") -> RunEvent:
    return RunEvent(run_id="r1", kind="k", status=status, seq=seq)  # type: ignore[arg-type]


def test_first_event_creates_the_record() -> None:
    record = advance(None, _event(0))
    assert record is not None and record["seq"] == 0 and record["status"] == "running"


def test_newer_event_advances() -> None:
    record = advance({"seq": 0, "status": "running"}, _event(3, "success"))
    assert record is not None and record["status"] == "success"


def test_duplicate_and_late_events_are_ignored() -> None:
    current = {"seq": 3, "status": "success"}
    assert advance(current, _event(3)) is None
    assert advance(current, _event(1)) is None
