"""agent-runner's internal API: the run ledger as it answers it, and where to ask.

``GET internal/runs/{id}`` (the gateway's reconciler, memory, the scheduler's drains),
``POST internal/runs/wait`` (the gateway's create-and-wait: a ``RunRequested`` in, a record
out), ``POST internal/runs/{id}/cancel`` and ``GET internal/agents``."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentia import names
from agentia.contracts import Call
from agentia.events import RUNNER_FINAL, Kind, RunRequested, Status

WAIT: Final = "internal/runs/wait"
AGENTS: Final = "internal/agents"


def run_path(run_id: str) -> str:
    return f"internal/runs/{run_id}"


def cancel_path(run_id: str) -> str:
    return f"internal/runs/{run_id}/cancel"


class FinalEventRef(BaseModel):
    """The final event a finished run publishes (recorded before it is published)."""

    kind: Kind = Field(description="run.completed, run.failed or run.cancelled.")
    seq: int = Field(ge=0, description="Its place in the run's events.")


class LedgerRecord(BaseModel):
    """A run as agent-runner's ledger holds it. A create-and-wait answered with a record that
    is not final (``pending``: another replica runs it) means: wait for its final event."""

    # The ledger's own bookkeeping (holder, lease, progress, failure streak) rides along.
    model_config = ConfigDict(extra="allow")

    run_id: str = Field(description="The run.")
    status: Status = Field(description="pending, running, or how it ended.")
    agent_id: str | None = Field(default=None, description="The agent it runs.")
    thread_id: str | None = Field(default=None, description="Its thread (None: stateless).")
    owner: str | None = Field(default=None, description="The key its usage counts against.")
    attempt: int = Field(default=0, ge=0, description="Attempts so far, from 1.")
    output: Any = Field(default=None, description="The final output (success).")
    error: str | None = Field(default=None, description="Why it failed or was cancelled.")
    last_agent: str | None = Field(default=None, description="The agent that ran last.")
    usage: dict[str, Any] | None = Field(default=None, description="Tokens and requests.")
    models: dict[str, dict[str, Any]] | None = Field(
        default=None, description="Usage split by model."
    )
    holder: dict[str, str] | None = Field(
        default=None, description="The process running it (replica and boot id), if any."
    )
    lease_until: float = Field(
        default=0, description="Until when (epoch s) its holder's lease runs."
    )
    final_event: FinalEventRef | None = Field(
        default=None, description="The final event, once the run ended."
    )

    @property
    def final(self) -> bool:
        """Whether the run has ended (agent-runner never changes it again)."""
        return self.status in RUNNER_FINAL

    def as_json(self) -> dict[str, Any]:
        """The record as plain JSON values (for what stores or re-sends it)."""
        return self.model_dump(mode="json")


class CancelAnswer(BaseModel):
    """A cancel was passed on: the run stops at its next step, wherever it runs."""

    run_id: str = Field(description="The run.")
    status: Literal["cancelling"] = Field(default="cancelling", description="Always cancelling.")


class RunnerClient:
    """agent-runner's run API through a :class:`Call` (it raises what the Call raises)."""

    def __init__(self, call: Call, app_id: str = names.AGENT_RUNNER) -> None:
        self._call, self.app_id = call, app_id

    async def ledger(self, run_id: str) -> LedgerRecord:
        """The run as the ledger has it (an ``InvokeError`` 404: never seen)."""
        found = await self._call(self.app_id, run_path(run_id), http_method="GET")
        return LedgerRecord.model_validate(found)

    async def wait(self, request: RunRequested, timeout: float | None = None) -> LedgerRecord:
        """Run ``request`` now and answer with its record (final, or pending: see
        :class:`LedgerRecord`)."""
        found = await self._call(
            self.app_id, WAIT, body=request.model_dump(mode="json"), timeout=timeout
        )
        return LedgerRecord.model_validate(found)

    async def cancel(self, run_id: str) -> CancelAnswer:
        return CancelAnswer.model_validate(await self._call(self.app_id, cancel_path(run_id)))

    async def agents(self) -> list[dict[str, Any]]:
        """The agents agent-runner loaded, as its catalog lists them."""
        return list(await self._call(self.app_id, AGENTS, http_method="GET"))
