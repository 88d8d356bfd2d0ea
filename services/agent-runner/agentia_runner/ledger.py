"""The run ledger's rules: who runs a run, when a claim is dead, when a run is poison.

No Dapr here (``attempts.py`` keeps the records in the state store). One record per run id:

- ``holder`` (replica and boot of the process running it) and ``lease_until`` (wall-clock
  seconds), renewed by the running attempt every ``RENEW_S``. A delivery that finds a live
  lease held by someone else waits and answers RETRY, so the request stays on the broker
  until the run is final; an expired lease, or one held by an earlier life of this same
  replica (it was killed and restarted), is taken over at once.
- ``attempt`` counts claims; ``progress`` is how many events the holder had published at its
  last renewal; ``failures`` is the streak of attempts that failed at the same step with an
  error that is not unavailability. ``MAX_FAILURES`` in a row make the run poison: it ends
  failed as dead-lettered, with that step and error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from agentia.events import FINAL_KIND, RUNNER_FINAL, Status

LEASE_S: Final = 15.0
RENEW_S: Final = 5.0
MAX_FAILURES: Final = 3


@dataclass(frozen=True)
class Holder:
    """One process of one replica: the replica id outlives restarts, the boot id does not."""

    replica: str
    boot: str

    def as_dict(self) -> dict[str, str]:
        return {"replica": self.replica, "boot": self.boot}


class Verdict(Enum):
    """What a delivery of a run request should do, given the ledger."""

    DONE = "done"  # final: answer with the record (and ack)
    TAKE = "take"  # nobody runs it: claim it and run it
    WAIT_LOCAL = "wait_local"  # this process runs it: wait for that attempt
    WAIT_REMOTE = "wait_remote"  # another live process runs it: wait, then RETRY


def verdict(record: dict[str, Any] | None, me: Holder, now: float) -> Verdict:
    if record is None:
        return Verdict.TAKE
    if record.get("status") in RUNNER_FINAL:
        return Verdict.DONE
    holder = record.get("holder")
    if not isinstance(holder, dict):
        return Verdict.TAKE  # released after a failed attempt (or a record from before leases)
    if holder == me.as_dict():
        return Verdict.WAIT_LOCAL
    if holder.get("replica") == me.replica:
        return Verdict.TAKE  # an earlier life of this replica held it: it is dead
    if float(record.get("lease_until") or 0) <= now:
        return Verdict.TAKE
    return Verdict.WAIT_REMOTE


def claimed(
    record: dict[str, Any] | None, base: dict[str, Any], me: Holder, now: float
) -> dict[str, Any]:
    """The record that makes ``me`` the run's holder, for its next attempt."""
    before = record or {}
    return {
        **before,
        **base,
        "status": Status.RUNNING,
        "attempt": int(before.get("attempt") or 0) + 1,
        "holder": me.as_dict(),
        "lease_until": now + LEASE_S,
        "progress": 0,
    }


def renewed(record: dict[str, Any], progress: int, now: float) -> dict[str, Any]:
    return {**record, "lease_until": now + LEASE_S, "progress": progress}


def released(record: dict[str, Any]) -> dict[str, Any]:
    """The attempt gave up (unavailability): the next delivery takes the run at once."""
    return {**record, "holder": None, "lease_until": 0}


def failed(record: dict[str, Any], step: int, error: str) -> tuple[dict[str, Any], bool]:
    """An attempt failed at ``step`` with an error that is not unavailability: the record
    after it, and whether the run is now poison (the same step failed ``MAX_FAILURES`` times
    in a row)."""
    streak = record.get("failures") or {}
    count = int(streak.get("count", 0)) + 1 if streak.get("step") == step else 1
    after = {**released(record), "failures": {"step": step, "count": count, "error": error}}
    return after, count >= MAX_FAILURES


def dead_letter_error(step: int, count: int, error: str, kept_as: str) -> str:
    return (
        f"dead-lettered: failed {count} times in a row at step {step}: {error}; "
        f"the request is kept as {kept_as}"
    )


def final(record: dict[str, Any], fields: dict[str, Any], last_seq: int) -> dict[str, Any]:
    """The run's final record; its final event is recorded before it is published, so a crash
    in between re-publishes the same event (same id) instead of running the agent again."""
    status = Status(fields["status"])
    return {
        **record,
        **fields,
        "holder": None,
        "lease_until": 0,
        "final_event": {"kind": FINAL_KIND[status], "seq": last_seq},
    }
