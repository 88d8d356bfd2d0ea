"""Event contracts: the data of the CloudEvents that travel on the mesh's topics.

Each event is a pydantic model with a ``schema_version``; its CloudEvent ``type`` is the
class name, so a consumer can route on it without opening the payload. Consumers are
idempotent on ``event_id`` (or ``run_id`` for runs): at-least-once delivery, exactly-once effect.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Base of every event on the mesh."""

    model_config = ConfigDict(extra="forbid")

    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: int = Field(default=1, description="Version of this event's schema.")
    event_id: str = Field(
        default_factory=_new_id, description="Unique id; consumers de-duplicate on it."
    )
    occurred_at: datetime = Field(
        default_factory=_now, description="When the event happened (UTC)."
    )

    @classmethod
    def cloudevent_type(cls) -> str:
        """The CloudEvent ``type`` attribute: the class name."""
        return cls.__name__


class RunRequested(Event):
    """A client (through the gateway) or a schedule asks for an agent run."""

    run_id: str = Field(description="Run id, the idempotency key of the run.")
    thread_id: str | None = Field(default=None, description="Thread the run belongs to, if any.")
    agent_id: str = Field(description="Name of the agent definition to run.")
    input: Any = Field(default=None, description="The run's input (messages or a value).")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Caller metadata.")
    owner: str | None = Field(
        default=None,
        description="API key (tenant) whose token budget the run's model usage counts against.",
    )


class Status(StrEnum):
    """A run's status. The only place these strings are written: everything else uses these
    members (a ``StrEnum``: equal to, hashed as and serialised as the plain string)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"  # one of the Agent Protocol's statuses; final, not written today
    INTERRUPTED = "interrupted"


class Kind(StrEnum):
    """The kind of a run event (``RunEvent.kind``; the ``event`` of a stream's frame)."""

    RUN_STARTED = "run.started"
    AGENT_UPDATED = "agent.updated"
    MESSAGE_DELTA = "message.delta"
    MESSAGE_COMPLETED = "message.completed"
    TOOL_CALL = "tool.call"
    TOOL_RESULT = "tool.result"
    HANDOFF = "handoff"
    RUN_COMPLETED = "run.completed"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    # A workflow's model turn used the model: ``run_id`` is the turn's step key (counted
    # once), ``data`` has ``instance_id``, ``usage`` and ``models`` (as a final event does).
    MODEL_USAGE = "model.usage"


# The final statuses a run's own event can carry, and the final event for each.
FINAL_KIND: Final[dict[Status, Kind]] = {
    Status.SUCCESS: Kind.RUN_COMPLETED,
    Status.ERROR: Kind.RUN_FAILED,
    Status.INTERRUPTED: Kind.RUN_CANCELLED,
}
FINAL_KINDS: Final = frozenset(FINAL_KIND.values())
# What agent-runner settles a run with (its ledger's final records).
RUNNER_FINAL: Final = frozenset(FINAL_KIND)
# Every status after which a run's record does not change again: the gateway's own timeout
# too, which agent-runner never writes.
FINAL: Final = RUNNER_FINAL | {Status.TIMEOUT}


class RunEvent(Event):
    """Something happened to a run: started, produced output, finished or failed.

    The envelope every run event shares; each kind is a subclass below (``RunStarted``,
    ``MessageDelta``, …) whose class name is its CloudEvent ``type`` and whose ``data`` is
    checked against that kind's model when it is made. Build one with :meth:`of`; a consumer
    may read any of them as this class (``data`` a plain dict) or as its kind's class."""

    run_id: str = Field(description="The run this event belongs to.")
    kind: Kind = Field(description="Event kind, e.g. run.started, message.delta, run.completed.")
    status: Status = Field(description="The run's status after this event.")
    seq: int = Field(ge=0, description="Position of this event in the run's stream, from 0.")
    thread_id: str | None = Field(
        default=None, description="The thread the run is on (None: a stateless run)."
    )
    data: dict[str, Any] = Field(default_factory=dict, description="Kind-specific payload.")

    DATA: ClassVar[type[BaseModel] | None] = None  # the kind's payload model

    @model_validator(mode="after")
    def _data_fits_its_kind(self) -> RunEvent:
        if self.DATA is not None:
            self.DATA.model_validate(self.data)
        return self

    def payload(self) -> BaseModel:
        """``data`` as its kind's model."""
        return KIND_DATA[self.kind].model_validate(self.data)

    @staticmethod
    def of(**fields: Any) -> RunEvent:
        """The event of ``fields["kind"]``'s class (its data checked)."""
        return _RUN_EVENT.validate_python(fields)


_KIND_DOC = "Event kind: the one this class stands for."


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunStartedData(_Data):
    """An attempt of the run started."""

    agent_id: str = Field(description="The agent the run started with.")
    attempt: int | None = Field(default=None, description="The attempt, from 1 (runs only).")


class AgentUpdatedData(_Data):
    """Another agent took over (not the starting one)."""

    agent: str = Field(description="The agent now running.")


class MessageDeltaData(_Data):
    """Text the model produced, in order (deltas may be batched)."""

    delta: str = Field(description="The text, appended to what came before.")


class MessageCompletedData(_Data):
    """A whole message of the model."""

    text: str = Field(description="The message's text.")


class ToolCallData(_Data):
    """The model called a tool."""

    name: str | None = Field(description="The tool's name.")
    arguments: str | None = Field(description="JSON object of arguments, as the model wrote it.")
    call_id: str | None = Field(description="The model's id for the call.")


class ToolResultData(_Data):
    """A tool's output, answering a call."""

    output: Any = Field(description="What the tool returned (JSON, or its text).")
    call_id: str | None = Field(default=None, description="The call it answers.")
    name: str | None = Field(default=None, description="The tool's name, when known.")


class HandoffData(_Data):
    """The running agent handed the conversation to another."""

    to: str = Field(description="The agent handed to.")


class FinalData(_Data):
    """How the run ended (the same fields for each final kind)."""

    output: Any = Field(default=None, description="The final output (success).")
    error: str | None = Field(default=None, description="Why it failed or was cancelled.")
    last_agent: str | None = Field(default=None, description="The agent that ran last.")
    usage: dict[str, int] | None = Field(default=None, description="Tokens and requests, all.")
    models: dict[str, dict[str, int]] | None = Field(
        default=None, description="Usage split by model."
    )
    owner: str | None = Field(default=None, description="The key whose budget it counts against.")
    thread_id: str | None = Field(default=None, description="The run's thread (older readers).")


class ModelUsageData(_Data):
    """A workflow's model turn used the model (counted once per turn)."""

    instance_id: str = Field(description="The workflow instance.")
    usage: dict[str, int] = Field(description="Tokens and requests of the turn.")
    models: dict[str, dict[str, int]] = Field(description="The same, by model.")


KIND_DATA: Final[dict[Kind, type[BaseModel]]] = {
    Kind.RUN_STARTED: RunStartedData,
    Kind.AGENT_UPDATED: AgentUpdatedData,
    Kind.MESSAGE_DELTA: MessageDeltaData,
    Kind.MESSAGE_COMPLETED: MessageCompletedData,
    Kind.TOOL_CALL: ToolCallData,
    Kind.TOOL_RESULT: ToolResultData,
    Kind.HANDOFF: HandoffData,
    Kind.RUN_COMPLETED: FinalData,
    Kind.RUN_FAILED: FinalData,
    Kind.RUN_CANCELLED: FinalData,
    Kind.MODEL_USAGE: ModelUsageData,
}


class RunStarted(RunEvent):
    """An attempt of the run started (``seq`` 0 for the first)."""

    kind: Literal[Kind.RUN_STARTED] = Field(default=Kind.RUN_STARTED, description=_KIND_DOC)
    DATA: ClassVar[type[BaseModel] | None] = RunStartedData


class AgentUpdated(RunEvent):
    """Another agent took over."""

    kind: Literal[Kind.AGENT_UPDATED] = Field(default=Kind.AGENT_UPDATED, description=_KIND_DOC)
    DATA: ClassVar[type[BaseModel] | None] = AgentUpdatedData


class MessageDelta(RunEvent):
    """Streamed text."""

    kind: Literal[Kind.MESSAGE_DELTA] = Field(default=Kind.MESSAGE_DELTA, description=_KIND_DOC)
    DATA: ClassVar[type[BaseModel] | None] = MessageDeltaData


class MessageCompleted(RunEvent):
    """A whole message."""

    kind: Literal[Kind.MESSAGE_COMPLETED] = Field(
        default=Kind.MESSAGE_COMPLETED, description=_KIND_DOC
    )
    DATA: ClassVar[type[BaseModel] | None] = MessageCompletedData


class ToolCalled(RunEvent):
    """The model called a tool."""

    kind: Literal[Kind.TOOL_CALL] = Field(default=Kind.TOOL_CALL, description=_KIND_DOC)
    DATA: ClassVar[type[BaseModel] | None] = ToolCallData


class ToolResult(RunEvent):
    """A tool answered."""

    kind: Literal[Kind.TOOL_RESULT] = Field(default=Kind.TOOL_RESULT, description=_KIND_DOC)
    DATA: ClassVar[type[BaseModel] | None] = ToolResultData


class Handoff(RunEvent):
    """A handoff to another agent."""

    kind: Literal[Kind.HANDOFF] = Field(default=Kind.HANDOFF, description=_KIND_DOC)
    DATA: ClassVar[type[BaseModel] | None] = HandoffData


class RunCompleted(RunEvent):
    """The run succeeded (final)."""

    kind: Literal[Kind.RUN_COMPLETED] = Field(default=Kind.RUN_COMPLETED, description=_KIND_DOC)
    DATA: ClassVar[type[BaseModel] | None] = FinalData


class RunFailed(RunEvent):
    """The run failed (final)."""

    kind: Literal[Kind.RUN_FAILED] = Field(default=Kind.RUN_FAILED, description=_KIND_DOC)
    DATA: ClassVar[type[BaseModel] | None] = FinalData


class RunCancelled(RunEvent):
    """The run was cancelled (final)."""

    kind: Literal[Kind.RUN_CANCELLED] = Field(default=Kind.RUN_CANCELLED, description=_KIND_DOC)
    DATA: ClassVar[type[BaseModel] | None] = FinalData


class ModelUsage(RunEvent):
    """A workflow's model turn's usage; ``run_id`` is the turn's step key."""

    kind: Literal[Kind.MODEL_USAGE] = Field(default=Kind.MODEL_USAGE, description=_KIND_DOC)
    DATA: ClassVar[type[BaseModel] | None] = ModelUsageData


RUN_EVENT_CLASSES: Final[tuple[type[RunEvent], ...]] = (
    RunStarted,
    AgentUpdated,
    MessageDelta,
    MessageCompleted,
    ToolCalled,
    ToolResult,
    Handoff,
    RunCompleted,
    RunFailed,
    RunCancelled,
    ModelUsage,
)
AnyRunEvent = Annotated[
    RunStarted
    | AgentUpdated
    | MessageDelta
    | MessageCompleted
    | ToolCalled
    | ToolResult
    | Handoff
    | RunCompleted
    | RunFailed
    | RunCancelled
    | ModelUsage,
    Field(discriminator="kind"),
]
_RUN_EVENT: TypeAdapter[RunEvent] = TypeAdapter(AnyRunEvent)


class MemoryChanged(Event):
    """The memory service changed a thread or a memory."""

    namespace: str = Field(description="Namespace of what changed (thread id or store namespace).")
    key: str = Field(description="Key or item id of what changed.")
    change: Literal["created", "updated", "deleted"] = Field(description="What happened to it.")


class ToolEvent(Event):
    """An agent published an event through tool-mcp's ``publish_event`` tool (allowed topics
    only)."""

    topic: str = Field(description="The topic it was published to.")
    data: dict[str, Any] = Field(default_factory=dict, description="What the agent sent.")
    published_by: str = Field(description="App id of the tool server that published it.")


class AgentCatalog(Event):
    """The agents a runner can run, published by agent-runner when it starts and now and then
    after: the gateway keeps the newest, so it can accept runs (and refuse unknown agents)
    without asking agent-runner, up or not."""

    agents: list[dict[str, Any]] = Field(
        description="Each agent definition as agent-runner checked it: name, description, "
        "model, tools and the rest of its file."
    )
    digest: str = Field(description="Hash of the definitions: equal digests, equal catalogs.")
    published_by: str = Field(description="The runner replica that published it.")


class DeadLetter(BaseModel):
    """An event that exhausted its retries, kept durably so it can be inspected and replayed."""

    model_config = ConfigDict(extra="allow")

    topic: str = Field(description="The dead-letter topic it arrived on.")
    cloudevent: dict[str, Any] = Field(description="The full CloudEvent as delivered.")
    received_at: datetime = Field(default_factory=_now, description="When it was dead-lettered.")


_TYPED: tuple[type[Event], ...] = (
    RunRequested,
    RunEvent,
    *RUN_EVENT_CLASSES,
    MemoryChanged,
    AgentCatalog,
)
EVENT_TYPES: dict[str, type[Event]] = {cls.cloudevent_type(): cls for cls in _TYPED}
