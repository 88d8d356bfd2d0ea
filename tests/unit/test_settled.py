"""The gateway's memory of runs it has settled: a repeat settle needs no reads."""

from __future__ import annotations

from agentia_gateway.run_flow import Settled
from agentia_gateway.run_record import RunRecord


def run(run_id: str, status: str = "success") -> RunRecord:
    return RunRecord(run_id=run_id, agent_id="a", status=status, created_at="t0", updated_at="t0")


def test_a_settled_run_is_answered_with_a_copy_of_its_record() -> None:
    settled = Settled()
    settled.put("r1", run("r1"))
    got = settled.get("r1")
    assert "r1" in settled and got == run("r1")
    assert got is not None
    got.metadata["changed"] = True  # a caller's change does not reach the remembered record
    assert settled.get("r1") == run("r1")


def test_a_run_settled_to_nothing_is_remembered_as_such() -> None:
    settled = Settled()
    settled.put("gone", None)  # rolled back and deleted
    assert "gone" in settled and settled.get("gone") is None


def test_the_oldest_are_forgotten_past_the_bound() -> None:
    settled = Settled(size=2)
    for run_id in ("a", "b", "c"):
        settled.put(run_id, run(run_id))
    assert "a" not in settled and "b" in settled and "c" in settled
    settled.put("b", run("b"))  # put again: the newest
    settled.put("d", run("d"))
    assert "c" not in settled and "b" in settled
