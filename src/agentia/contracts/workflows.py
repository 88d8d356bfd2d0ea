"""agent-runner's workflow API: long-lived agents (Dapr Workflows) it hosts, started and
steered by the gateway's ``/workflows`` routes and by the scheduler's workflow schedules.

``POST internal/workflows`` (a :class:`StartWorkflow`; 201 :class:`WorkflowStarted`, 409 when
the id runs, 422 naming what is wrong), ``POST internal/workflows/check`` (204, or that 422),
``GET internal/workflows?…`` (a :class:`WorkflowListQuery`; :class:`WorkflowList`),
``GET internal/workflows/{id}`` (:class:`WorkflowInstance`), ``GET …/{id}/steps``
(:class:`WorkflowSteps`), ``POST …/{id}/events/{name}`` (any JSON, or none;
:class:`EventRaised`), ``POST …/{id}/pause|resume|terminate`` (:class:`ControlAccepted`) and
``DELETE …/{id}`` (:class:`WorkflowPurged`). An unknown instance is a 404, one in the wrong
state for the action a 409.

Each workflow's own input model is the workflow package's (``agentia_workflows.contracts``);
here the input is a JSON object that agent-runner checks against it."""

from __future__ import annotations

import urllib.parse
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentia import names
from agentia.contracts import Call, IsoTime

WORKFLOWS: Final = "internal/workflows"
CHECK: Final = "internal/workflows/check"
INSTANCE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
EVENT_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
# What the engine reports of an instance that will not change any more.
TERMINAL: Final = frozenset({"COMPLETED", "FAILED", "TERMINATED"})
Control = Literal["pause", "resume", "terminate"]


def _segment(value: str) -> str:
    # ':' stays as it is: legal in a path segment, and the access policies match it so.
    return urllib.parse.quote(value, safe=":")


def instance_path(instance_id: str) -> str:
    """Where an instance is read or purged."""
    return f"{WORKFLOWS}/{_segment(instance_id)}"


def steps_path(instance_id: str) -> str:
    """Where an instance's step ledger is read."""
    return f"{instance_path(instance_id)}/steps"


def event_path(instance_id: str, event_name: str) -> str:
    """Where an event is raised to an instance."""
    return f"{instance_path(instance_id)}/events/{_segment(event_name)}"


def control_path(instance_id: str, action: Control) -> str:
    """Where an instance is paused, resumed or terminated."""
    return f"{instance_path(instance_id)}/{action}"


class StartWorkflow(BaseModel):
    """A workflow to start (or, on ``…/check``, to check): its name and input."""

    model_config = ConfigDict(extra="forbid")
    workflow: str = Field(description="Registered workflow name, e.g. AgentLoop.")
    input: dict[str, Any] = Field(description="The workflow's input (see its contract).")
    instance_id: str | None = Field(
        default=None,
        pattern=INSTANCE_ID_PATTERN,
        description="Instance id; a new one when absent. Starting a running id is refused.",
    )


class WorkflowStarted(BaseModel):
    """The instance was scheduled."""

    instance_id: str = Field(description="Its id.")
    workflow: str = Field(description="The workflow it runs.")


class WorkflowFailure(BaseModel):
    """Why an instance failed."""

    type: str = Field(description="The error's type.")
    message: str = Field(description="The error's message.")


class WorkflowInstance(BaseModel):
    """An instance as the workflow engine reports it."""

    instance_id: str = Field(description="Its id.")
    workflow: str = Field(description="The workflow it runs.")
    status: str = Field(
        description="RUNNING, COMPLETED, FAILED, TERMINATED, PENDING, SUSPENDED, ..."
    )
    created_at: IsoTime | None = Field(description="When it was created.")
    last_updated_at: IsoTime | None = Field(description="When it last changed.")
    input: Any = Field(description="Its input (JSON, or the raw text).")
    output: Any = Field(description="Its output, once it completed.")
    custom_status: Any = Field(description="What it reports of itself while it runs.")
    failure: WorkflowFailure | None = Field(description="Why it failed, if it did.")

    @property
    def terminal(self) -> bool:
        """Whether it has ended (completed, failed or terminated)."""
        return self.status in TERMINAL


class WorkflowListQuery(BaseModel):
    """Which instances to list: a page of the ids the engine knows (query parameters)."""

    page_size: int = Field(default=100, ge=1, le=1000, description="Ids in a page.")
    continuation_token: str | None = Field(
        default=None, pattern=r"^\d{1,18}$", description="From the previous page."
    )
    details: bool = Field(default=False, description="Describe each instance too.")


def list_path(query: WorkflowListQuery | None = None) -> str:
    """Where instances are listed (``query``: which page)."""
    if query is None:
        return WORKFLOWS
    params = query.model_dump(exclude_none=True)
    params["details"] = str(query.details).lower()
    return f"{WORKFLOWS}?{urllib.parse.urlencode(params)}"


class WorkflowList(BaseModel):
    """A page of instance ids. ``instances`` is there only when ``details`` was asked
    (serve it with ``exclude_unset``)."""

    instance_ids: list[str] = Field(description="The page's ids.")
    continuation_token: str | None = Field(description="The next page's token (None: last).")
    instances: list[WorkflowInstance] | None = Field(
        default=None, description="Each instance of the page that still exists (details)."
    )

    def as_json(self) -> dict[str, Any]:
        """The page as agent-runner sent it (``instances`` only when asked)."""
        return self.model_dump(mode="json", exclude_unset=True)


class WorkflowStep(BaseModel):
    """One entry of an instance's step ledger: what a model turn or tool call recorded."""

    # What the step recorded (its kind, result, attempts...) is the workflow package's.
    model_config = ConfigDict(extra="allow")
    step: int = Field(ge=1, description="Its place in the instance's steps, from 1.")


class WorkflowSteps(BaseModel):
    """An instance's step ledger, in order."""

    instance_id: str = Field(description="The instance.")
    steps: list[WorkflowStep] = Field(description="Its steps.")


class EventRaised(BaseModel):
    """The event was delivered to the instance."""

    instance_id: str = Field(description="The instance.")
    event: str = Field(description="The event's name.")
    status: Literal["raised"] = Field(default="raised", description="Always raised.")


class ControlAccepted(BaseModel):
    """The engine took the pause, resume or terminate."""

    instance_id: str = Field(description="The instance.")
    action: Control = Field(description="What was asked.")
    status: Literal["accepted"] = Field(default="accepted", description="Always accepted.")


class WorkflowPurged(BaseModel):
    """The finished instance's history (and its children's) and step ledger are deleted."""

    instance_id: str = Field(description="The instance.")
    status: Literal["purged"] = Field(default="purged", description="Always purged.")


class WorkflowsClient:
    """agent-runner's workflow API over ``call`` (the caller's error policy applies: with
    ``DaprClient.call``, a refusal is an ``InvokeError`` with agent-runner's reason)."""

    def __init__(
        self, call: Call, app_id: str = names.AGENT_RUNNER, timeout: float | None = None
    ) -> None:
        self._call = call
        self.app_id = app_id
        self.timeout = timeout

    async def _ask(self, path: str, http_method: str, body: Any = None) -> Any:
        if self.timeout is None:  # the Call's own default
            return await self._call(self.app_id, path, http_method=http_method, body=body)
        return await self._call(
            self.app_id, path, http_method=http_method, body=body, timeout=self.timeout
        )

    async def start(self, req: StartWorkflow) -> WorkflowStarted:
        """Start an instance (its input checked against the workflow's contract first)."""
        body = req.model_dump(mode="json", exclude_none=True)
        return WorkflowStarted.model_validate(await self._ask(WORKFLOWS, "POST", body))

    async def check(self, req: StartWorkflow) -> None:
        """Whether ``req`` would start: returns, or the 422 starting it would get."""
        await self._ask(CHECK, "POST", req.model_dump(mode="json", exclude_none=True))

    async def list_instances(self, query: WorkflowListQuery | None = None) -> WorkflowList:
        """A page of the instance ids the engine knows."""
        return WorkflowList.model_validate(await self._ask(list_path(query), "GET"))

    async def status(self, instance_id: str) -> WorkflowInstance:
        """One instance's status, input and output."""
        return WorkflowInstance.model_validate(await self._ask(instance_path(instance_id), "GET"))

    async def steps(self, instance_id: str) -> WorkflowSteps:
        """An instance's step ledger."""
        return WorkflowSteps.model_validate(await self._ask(steps_path(instance_id), "GET"))

    async def raise_event(self, instance_id: str, event_name: str, data: Any = None) -> EventRaised:
        """Deliver ``event_name`` with ``data`` (JSON; None sends no body) to an instance."""
        answer = await self._ask(event_path(instance_id, event_name), "POST", data)
        return EventRaised.model_validate(answer)

    async def control(self, instance_id: str, action: Control) -> ControlAccepted:
        """Pause, resume or terminate an instance."""
        answer = await self._ask(control_path(instance_id, action), "POST")
        return ControlAccepted.model_validate(answer)

    async def pause(self, instance_id: str) -> ControlAccepted:
        """Pause a running instance."""
        return await self.control(instance_id, "pause")

    async def resume(self, instance_id: str) -> ControlAccepted:
        """Resume a paused instance."""
        return await self.control(instance_id, "resume")

    async def terminate(self, instance_id: str) -> ControlAccepted:
        """Terminate an instance and its children."""
        return await self.control(instance_id, "terminate")

    async def purge(self, instance_id: str) -> WorkflowPurged:
        """Delete a finished instance's history and step ledger."""
        answer = await self._ask(instance_path(instance_id), "DELETE")
        return WorkflowPurged.model_validate(answer)
