"""Event contracts: the data of the CloudEvents that travel on the mesh's topics.

Each event is a pydantic model with a ``schema_version``; its CloudEvent ``type`` is the
class name, so a consumer can route on it without opening the payload. Consumers are
idempotent on ``event_id`` (or ``run_id`` for runs): at-least-once delivery, exactly-once effect.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    TIMEOUT = "timeout"  # the gateway gave up waiting on agent-runner's answer
    INTERRUPTED = "interrupted"


RunStatus = Status


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
    """Something happened to a run: started, produced output, finished or failed."""

    run_id: str = Field(description="The run this event belongs to.")
    kind: Kind = Field(description="Event kind, e.g. run.started, message.delta, run.completed.")
    status: RunStatus = Field(description="The run's status after this event.")
    seq: int = Field(ge=0, description="Position of this event in the run's stream, from 0.")
    data: dict[str, Any] = Field(default_factory=dict, description="Kind-specific payload.")


MODEL_USAGE_KIND: Final = Kind.MODEL_USAGE


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


EVENT_TYPES: dict[str, type[Event]] = {
    cls.cloudevent_type(): cls for cls in (RunRequested, RunEvent, MemoryChanged, AgentCatalog)
}
