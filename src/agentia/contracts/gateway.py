"""The gateway's internal API, for the scheduler: runs a schedule starts (recorded, laned and
reconciled as a client's runs are) and whether a key may start a run now.

``POST internal/runs`` (a ``ScheduledRun``: the run, as ``GET /runs/{id}`` shows it),
``POST internal/runs/check`` (204, or the refusal creating it would get) and
``GET internal/budgets/{key}?agent_id=…`` (200 ``BudgetAdmitted``, or 429 with the reason)."""

from __future__ import annotations

import urllib.parse
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentia import names
from agentia.contracts import ID_PATTERN, Call

RUNS: Final = "internal/runs"
RUNS_CHECK: Final = "internal/runs/check"


def budget_path(key_id: str, agent_id: str | None = None) -> str:
    """Where to ask whether ``key_id`` may start a run (of ``agent_id``: its model's limits)."""
    query = f"?{urllib.parse.urlencode({'agent_id': agent_id})}" if agent_id else ""
    return f"internal/budgets/{urllib.parse.quote(key_id, safe='')}{query}"


class ScheduledRun(BaseModel):
    """A run a schedule starts: its id is the tick's (a repeated fire finds the same run)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(pattern=ID_PATTERN, description="The tick's run id.")
    agent_id: str = Field(min_length=1, max_length=128, description="The agent to run.")
    input: Any = Field(default=None, description="The run's input.")
    thread_id: str | None = Field(default=None, pattern=ID_PATTERN, description="Its thread.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="The run's metadata.")
    owner: str | None = Field(default=None, description="The key whose budget it counts to.")


class BudgetAdmitted(BaseModel):
    """The key may start the run now."""

    key_id: str = Field(description="The key asked about.")
    admitted: Literal[True] = Field(default=True, description="Always true (else a 429).")


class GatewayClient:
    """The gateway's internal API through a :class:`Call` (it raises what the Call raises:
    a refusal is an ``InvokeError`` with the status and reason a client would get)."""

    def __init__(self, call: Call, app_id: str = names.GATEWAY) -> None:
        self._call, self.app_id = call, app_id

    async def create_run(self, run: ScheduledRun) -> dict[str, Any]:
        """Create (or find: the same id) the run; the run as ``GET /runs/{id}`` shows it."""
        return dict(await self._call(self.app_id, RUNS, body=run.model_dump(mode="json")))

    async def check_run(self, run: ScheduledRun) -> None:
        """Nothing when a run like ``run`` could be created now; else the refusal."""
        await self._call(self.app_id, RUNS_CHECK, body=run.model_dump(mode="json"))

    async def admit(self, key_id: str, agent_id: str | None = None) -> BudgetAdmitted:
        """The key may start a run of ``agent_id`` now; else an ``InvokeError`` 429 (with
        the reason) or 404 (no such key)."""
        found = await self._call(self.app_id, budget_path(key_id, agent_id), http_method="GET")
        return BudgetAdmitted.model_validate(found)
