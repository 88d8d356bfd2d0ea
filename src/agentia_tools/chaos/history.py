"""A history of what a chaos load did and saw, one JSON object per line, for the checker.

The load generator and its watchers record each operation as it happens (Jepsen's way: the
history is the evidence, the verdict is computed from it afterwards, offline, by
:mod:`agentia_tools.chaos.checker`). Every line is an :class:`Op`:

- ``requested``: a client asked for a run (``key``: the client's own name for it, a thread id
  or a run id it chose);
- ``accepted``: the system took it (``run``: the run id it answered with);
- ``refused``: it was not taken; ``definite`` when a retry could not change that (a 4xx),
  else the client gave up on an unknown outcome (a timeout, a dropped connection);
- ``observed``: a read of a run's status (``via``: ``ledger``, ``api``, ``stream``);
- ``completed``: a run's final event reached a subscriber (``event_id``: its CloudEvent id;
  the broker redelivering one event repeats the id, running the run twice makes a new one);
- ``effect``: a side effect was applied (``effect_key``: one per run and step; ``event_id``:
  the effect's own id, the same id again being the same effect redelivered);
- ``seqs``: the event seqs one subscriber saw of a run, in the order it saw them;
- ``workflow_started`` / ``workflow_observed``: a workflow instance started, and its status
  as read.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

OpKind = Literal[
    "requested",
    "accepted",
    "refused",
    "observed",
    "completed",
    "effect",
    "seqs",
    "workflow_started",
    "workflow_observed",
]


class Op(BaseModel):
    """One operation of a history."""

    model_config = ConfigDict(extra="forbid")

    at: float = Field(description="When it happened (epoch seconds, this machine's clock).")
    op: OpKind = Field(description="What happened (see the module's docstring).")
    process: str = Field(description="Who recorded it: the load, a watcher, a stream.")
    key: str | None = Field(default=None, description="The client's name for the request.")
    run: str | None = Field(default=None, description="The run id.")
    status: str | None = Field(default=None, description="A run's or workflow's status read.")
    via: str | None = Field(default=None, description="Where a status was read.")
    event_id: str | None = Field(default=None, description="A delivered event's id.")
    effect_key: str | None = Field(default=None, description="An effect's (run, step) key.")
    seqs: list[int] | None = Field(default=None, description="Event seqs as one subscriber saw.")
    definite: bool | None = Field(default=None, description="A refusal no retry could change.")
    why: str | None = Field(default=None, description="Why a request was refused.")
    instance: str | None = Field(default=None, description="A workflow instance id.")


class History:
    """Appends ops to a JSONL file as they happen (thread-safe; each line flushed, so a
    history survives the load generator dying mid-experiment)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def record(self, op: OpKind, process: str, **fields: Any) -> None:
        line = Op(at=time.time(), op=op, process=process, **fields).model_dump_json(
            exclude_none=True
        )
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read(path: Path) -> Iterator[Op]:
    """The ops of a history file; a line that is not an op is an error naming its number."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield Op.model_validate(json.loads(line))
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not a history op: {exc}") from None
