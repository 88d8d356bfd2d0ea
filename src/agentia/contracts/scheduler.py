"""The scheduler's internal API: schedules (cron, interval, one-shot) of agent runs, workflows
and drains, and drains on demand.

``POST internal/schedules`` (a :class:`ScheduleRequest`; 201 :class:`ScheduleView`, 409 when
the id is taken, 422 naming the field), ``GET internal/schedules?…`` (a :class:`ScheduleQuery`;
a list of :class:`ScheduleView`), ``GET internal/schedules/{id}`` (a :class:`ScheduleView` with
its Dapr job), ``DELETE internal/schedules/{id}`` (:class:`ScheduleDeleted`; 404 when there
is none) and ``POST internal/drains`` (a :class:`DrainRequest`; :class:`DrainReport`, 409
while another drain runs). The gateway's crons, tool-mcp's ``schedule_agent_run`` and the
CLI call it.

The cron and time-zone checks a request needs live here too, so a caller refuses what the
scheduler would refuse, with the same reason."""

from __future__ import annotations

import re
import urllib.parse
from datetime import UTC, datetime
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from agentia import names
from agentia.contracts import Call, IsoTime

SCHEDULES: Final = "internal/schedules"
DRAINS: Final = "internal/drains"
# A schedule's id: lowercase letters, digits and '-' (it names the Dapr job too).
SCHEDULE_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,62}$"
DESCRIPTORS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
SECONDS_PART: Final = re.compile(r"^(\*|\d{1,2}(-\d{1,2})?)(/\d{1,2})?$")


def schedule_path(schedule_id: str) -> str:
    """Where one schedule is read or deleted."""
    return f"{SCHEDULES}/{urllib.parse.quote(schedule_id, safe='')}"


class ScheduleError(ValueError):
    """A schedule is invalid; the message says which field and why."""


def _seconds(field: str) -> list[int]:
    """The seconds a six-field cron's first field allows (``*``, ``a-b``, ``*/n``, lists)."""
    found: set[int] = set()
    for part in field.split(","):
        match = SECONDS_PART.match(part)
        if not match:
            raise ScheduleError(f"cron: bad seconds field '{field}'")
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            low, high = 0, 59
        else:
            low_text, _, high_text = base.partition("-")
            low = int(low_text)
            high = int(high_text) if high_text else (59 if step_text else low)
        if not (0 <= low <= high <= 59) or not 1 <= step <= 59:
            raise ScheduleError(f"cron: seconds out of range in '{field}'")
        found.update(range(low, high + 1, step))
    return sorted(found)


def parse_cron(expr: str) -> tuple[list[int], str]:
    """(allowed seconds, five-field expression) of a 5- or 6-field cron or a descriptor;
    raises :class:`ScheduleError` saying what is wrong."""
    text = " ".join(expr.split())
    text = DESCRIPTORS.get(text.lower(), text)
    fields = text.split(" ")
    if len(fields) == 5:
        seconds, five = [0], text
    elif len(fields) == 6:
        seconds, five = _seconds(fields[0]), " ".join(fields[1:])
    else:
        raise ScheduleError(
            f"cron: '{expr}' has {len(fields)} fields; use 5 (min hour dom month dow), "
            "6 (with seconds first) or @hourly/@daily/@weekly/@monthly/@yearly"
        )
    try:
        CronSim(five, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ScheduleError(f"cron: '{expr}': {exc}") from None
    return seconds, five


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raises :class:`ScheduleError` for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"timezone: unknown time zone '{name}' (use an IANA name)") from None


class RunTarget(BaseModel):
    """Start a run of an agent (created by the gateway: recorded and laned as any run)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["run"] = Field(default="run", description="An agent run.")
    agent_id: str = Field(min_length=1, description="Agent definition name.")
    input: Any = Field(default=None, description="The run's input.")
    thread_id: str | None = Field(default=None, description="Thread to run on, if any.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Passed to the run.")
    owner: str | None = Field(
        default=None, description="API key whose token budget the runs count against."
    )


class WorkflowTarget(BaseModel):
    """Start a workflow instance on agent-runner."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["workflow"] = Field(description="A workflow.")
    workflow: str = Field(min_length=1, description="Registered workflow name, e.g. AgentLoop.")
    input: dict[str, Any] = Field(description="The workflow's input.")


class DrainRequest(BaseModel):
    """How a drain takes a topic's backlog: in batches of ``batch_size`` runs, each batch
    started and waited for before the next, until the queue is empty."""

    model_config = ConfigDict(extra="forbid")
    topic: str = Field(default=names.TOPIC_RUNS_BATCH, description="The topic to drain.")
    batch_size: int = Field(default=20, ge=1, le=1000, description="Runs started at a time.")
    batch_timeout_s: float = Field(
        default=60.0, ge=1, le=100, description="Wait at most this long for a batch's runs."
    )
    idle_s: float = Field(
        default=2.0, ge=0.1, le=60, description="The queue is empty when nothing arrives this long."
    )
    max_seconds: float = Field(
        default=600.0, ge=1, le=3600, description="Stop after this long, whatever is left."
    )

    @field_validator("topic")
    @classmethod
    def _drainable(cls, value: str) -> str:
        if value not in names.DRAINABLE_TOPICS:
            raise ValueError(
                f"'{value}' is not drained; one of: {', '.join(names.DRAINABLE_TOPICS)}"
            )
        return value


class DrainTarget(DrainRequest):
    """Drain a topic's backlog at each fire: start the runs waiting on it, batch by batch."""

    kind: Literal["drain"] = Field(description="A drain of a pull-based topic.")


# Not a tagged union: a run target may leave out "kind".
Target = RunTarget | WorkflowTarget | DrainTarget


class ScheduleRequest(BaseModel):
    """A schedule to create: exactly one of ``cron``, ``interval_s`` and ``at``."""

    model_config = ConfigDict(extra="forbid")
    schedule_id: str | None = Field(
        default=None,
        pattern=SCHEDULE_ID_PATTERN,
        description="Id (lowercase, digits, '-'); generated.",
    )
    replace: bool = Field(
        default=False,
        description="Replace the schedule of this id once the new one is checked (else 409).",
    )
    cron: str | None = Field(default=None, description="Cron: 5 fields, or 6 with seconds first.")
    interval_s: float | None = Field(default=None, ge=1, description="Fixed interval, seconds.")
    at: datetime | None = Field(default=None, description="One shot at this time.")
    timezone: str = Field(default="UTC", description="IANA time zone of cron and naive 'at'.")
    target: Target = Field(description="What to start at each fire.")
    end_at: datetime | None = Field(default=None, description="No fires after this time.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Kept with the schedule.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            parse_cron(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleRequest:
        given = [k for k in ("cron", "interval_s", "at") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of cron, interval_s, at (got {given or 'none'})")
        return self


class Schedule(ScheduleRequest):
    """A stored schedule (also the data of its Dapr job, which the job callback reads)."""

    schedule_id: str = Field(pattern=SCHEDULE_ID_PATTERN, description="The schedule's id.")
    created_at: datetime = Field(description="When it was created (UTC).")
    anchor: datetime = Field(description="First fire of an interval schedule (UTC).")


class FireSkip(BaseModel):
    """A fire that started nothing: its owner's budget was used up."""

    tick: IsoTime = Field(description="The scheduled time of the fire.")
    reason: str = Field(description="Why it started nothing.")


class FireError(BaseModel):
    """A fire the gateway or agent-runner refused (a thread deleted since, an agent gone)."""

    tick: IsoTime = Field(description="The scheduled time of the fire.")
    run_id: str = Field(description="The tick's run id.")
    reason: str = Field(description="What the service said.")


class DrainReport(BaseModel):
    """What one drain did."""

    topic: str = Field(description="The drained topic.")
    received: int = Field(description="Events taken from the queue.")
    started: int = Field(description="Run requests published on runs.requested.")
    dead_lettered: int = Field(description="Unreadable events kept as dead letters.")
    batches: int = Field(description="Batches started.")
    deferred: int = Field(
        default=0, description="Runs parked for a later drain: their key over budget."
    )
    unparked: int = Field(
        default=0, description="Runs parked by earlier drains, published again at the start."
    )
    unfinished: int = Field(description="Runs not finished when their batch's wait ran out.")
    stopped: str = Field(description="Why it stopped: 'idle' (queue empty), time, error.")
    took_s: float = Field(description="How long the drain took, seconds.")


class ScheduleView(Schedule):
    """A schedule as the scheduler answers it: the stored schedule, when it fires next and
    how its fires went. ``last_drain`` is there once a drain schedule drained; ``job`` only
    when one schedule is read. Serve it with ``exclude_unset`` so absent stays absent."""

    model_config = ConfigDict(extra="ignore")
    next_run: IsoTime | None = Field(description="The next fire (None: the schedule is over).")
    fires: int = Field(ge=0, description="Fires that started their run, workflow or drain.")
    last_run_id: str | None = Field(description="The run id of the last fire that started.")
    skipped: int = Field(ge=0, description="Fires skipped (the owner's budget used up).")
    last_skip: FireSkip | None = Field(description="The last skipped fire.")
    errors: int = Field(ge=0, description="Fires refused by the service they asked.")
    last_error: FireError | None = Field(description="The last refused fire.")
    last_drain: DrainReport | None = Field(
        default=None, description="What the last drain did (drain schedules)."
    )
    job: dict[str, Any] | None = Field(
        default=None, description="The Dapr job, as the Jobs API answers it (one schedule)."
    )

    def as_json(self) -> dict[str, Any]:
        """The schedule as the scheduler sent it (fields it left out stay out)."""
        return self.model_dump(mode="json", exclude_unset=True)


class ScheduleQuery(BaseModel):
    """Which schedules to list (query parameters)."""

    agent_id: str | None = Field(default=None, description="Only runs of this agent.")
    thread_id: str | None = Field(default=None, description="Only runs on this thread.")
    limit: int = Field(default=100, ge=1, le=1000, description="At most this many.")
    offset: int = Field(default=0, ge=0, description="Skip this many.")


def schedules_path(query: ScheduleQuery | None = None) -> str:
    """Where schedules are listed (``query``: which)."""
    if query is None:
        return SCHEDULES
    return f"{SCHEDULES}?{urllib.parse.urlencode(query.model_dump(exclude_none=True))}"


class ScheduleDeleted(BaseModel):
    """The schedule is gone: it fires no more."""

    schedule_id: str = Field(description="The schedule.")
    status: Literal["deleted"] = Field(default="deleted", description="Always deleted.")


_VIEWS = TypeAdapter(list[ScheduleView])


class SchedulerClient:
    """The scheduler's internal API over ``call`` (the caller's error policy applies: with
    ``DaprClient.call``, a refusal is an ``InvokeError`` with the scheduler's reason)."""

    def __init__(
        self, call: Call, app_id: str = names.SCHEDULER, timeout: float | None = None
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

    async def create(self, req: ScheduleRequest) -> ScheduleView:
        """Create (or, with ``replace``, replace) a schedule."""
        answer = await self._ask(SCHEDULES, "POST", req.model_dump(mode="json"))
        return ScheduleView.model_validate(answer)

    async def list_schedules(self, query: ScheduleQuery | None = None) -> list[ScheduleView]:
        """The schedules ``query`` selects (without one: the first 100)."""
        return _VIEWS.validate_python(await self._ask(schedules_path(query), "GET"))

    async def get(self, schedule_id: str) -> ScheduleView:
        """One schedule, with its Dapr job."""
        return ScheduleView.model_validate(await self._ask(schedule_path(schedule_id), "GET"))

    async def delete(self, schedule_id: str) -> ScheduleDeleted:
        """Delete a schedule and its job."""
        answer = await self._ask(schedule_path(schedule_id), "DELETE")
        return ScheduleDeleted.model_validate(answer)

    async def drain(self, req: DrainRequest | None = None) -> DrainReport:
        """Drain a topic's backlog now (``req``: which and how; runs.batch by default)."""
        body = (req or DrainRequest()).model_dump(mode="json")
        return DrainReport.model_validate(await self._ask(DRAINS, "POST", body))
