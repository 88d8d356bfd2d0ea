"""Crash points: SIGKILL this process at a named point of a run's life, for tests.

Off unless the service runs with ``AGENTIA_FAULT_INJECTION=1`` (then ``POST
/internal/faults`` arms a point for one run or thread id). An armed point fires once: the
arming lives in this process's memory and dies with it, so the attempt that the restart
makes runs through. A point that is not armed costs a dict lookup.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

# agent-runner
RUNNER_AFTER_CLAIM: Final = "runner.after_claim"  # the ledger names us the run's holder
RUNNER_AFTER_FIRST_EVENT: Final = "runner.after_first_event"  # run.started is published
RUNNER_AFTER_THREAD_APPEND: Final = "runner.after_thread_append"  # items added to the thread
RUNNER_IN_TOOL_CALL: Final = "runner.in_tool_call"  # tool.call published, its result not yet
RUNNER_AFTER_FINAL_RECORD: Final = "runner.after_final_record"  # final record saved, unpublished
RUNNER_AFTER_FINAL_PUBLISH: Final = "runner.after_final_publish"  # published, not marked/acked
# gateway
GATEWAY_AFTER_RECORD: Final = "gateway.after_record"  # run recorded and thread claimed
GATEWAY_AFTER_PUBLISH: Final = "gateway.after_publish"  # request published, no answer sent
# memory
MEMORY_IN_DISTILLATION: Final = "memory.in_distillation"  # the run's conversation read

POINTS: Final = frozenset(
    {
        RUNNER_AFTER_CLAIM,
        RUNNER_AFTER_FIRST_EVENT,
        RUNNER_AFTER_THREAD_APPEND,
        RUNNER_IN_TOOL_CALL,
        RUNNER_AFTER_FINAL_RECORD,
        RUNNER_AFTER_FINAL_PUBLISH,
        GATEWAY_AFTER_RECORD,
        GATEWAY_AFTER_PUBLISH,
        MEMORY_IN_DISTILLATION,
    }
)


class Arm(BaseModel):
    """Kill the service the next time a run with this run or thread id reaches ``point``."""

    model_config = ConfigDict(extra="forbid")
    point: str = Field(description=f"One of: {', '.join(sorted(POINTS))}.")
    key: str = Field(min_length=1, max_length=128, description="A run id or a thread id.")


class Faults:
    """The armed crash points of this process."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._armed: dict[str, set[str]] = {}

    def arm(self, point: str, key: str) -> None:
        if point not in POINTS:
            raise ValueError(f"point: '{point}' is not a crash point ({', '.join(sorted(POINTS))})")
        self._armed.setdefault(point, set()).add(key)

    def hit(self, point: str, *keys: str | None) -> None:
        """SIGKILL now if ``point`` is armed for one of ``keys``."""
        armed = self._armed.get(point)
        if not armed or not any(k in armed for k in keys if k):
            return
        log.warning("crash point reached: killing this process", extra={"point": point})
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)


NO_FAULTS: Final = Faults(enabled=False)
