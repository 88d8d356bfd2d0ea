"""The public API's bodies and answers, named and shaped as the Agent Protocol has them
(with LangGraph Platform's ``assistant_id`` accepted beside ``agent_id``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentia.contracts import ID_PATTERN as ID_PATTERN
from agentia.events import Status

StreamMode = Literal["values", "messages", "messages-tuple", "updates", "events", "debug", "custom"]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
Strategy = Literal["reject", "rollback", "interrupt", "enqueue"]


class ErrorResponse(BaseModel):
    """Why a request was refused."""

    detail: str = Field(description="The reason, in words.")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "The body is not JSON",
        401: "No or bad credentials",
        403: "The key's scope does not allow this",
        404: "Not found",
        409: "Conflict",
        413: "Body too large",
        422: "A field is missing or not valid (the reason names it)",
        429: "Rate limit reached, the key's token or cost budget for the day used up, or its "
        "limit of requests to the run's model reached",
        503: "A dependency is unavailable; retry",
    }.items()
}


def validation_detail(errors: Sequence[Any]) -> str:
    """FastAPI's validation errors in one line that names each bad field."""
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        parts.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'not valid')}")
    return "; ".join(parts)[:2000] or "the request is not valid"


class Message(BaseModel):
    """A chat message."""

    model_config = ConfigDict(extra="allow")
    role: str = Field(description="user, assistant, system, developer or tool.")
    content: str | list[dict[str, Any]] = Field(description="Text, or content blocks.")
    id: str | None = Field(default=None, description="The message's id.")


class RunCreate(BaseModel):
    """Payload for creating a run (stateful on a thread, or stateless)."""

    model_config = ConfigDict(extra="forbid")
    agent_id: str | None = Field(default=None, max_length=128, description="The agent to run.")
    assistant_id: str | None = Field(
        default=None, max_length=128, description="LangGraph's name for agent_id."
    )
    input: Any = Field(default=None, description="The input: text, {'messages': [...]}, a list.")
    messages: list[Message] | None = Field(
        default=None, max_length=1000, description="Messages to pass as input."
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Metadata of the run.")
    config: dict[str, Any] | None = Field(default=None, description="Agent configuration.")
    webhook: str | None = Field(default=None, description="Not supported: must be absent.")
    stream_mode: StreamMode | list[StreamMode] = Field(
        default="values", description="The stream mode(s) to use."
    )
    stream_subgraphs: bool = Field(default=False, description="Accepted; agents have none.")
    on_disconnect: Literal["cancel", "continue"] = Field(
        default="cancel", description="What a dropped stream does to its run."
    )
    multitask_strategy: Strategy = Field(
        default="reject", description="What to do when the thread is busy."
    )
    if_not_exists: Literal["create", "reject"] = Field(
        default="reject", description="A missing thread: create it or refuse (404)."
    )
    after_seconds: int | None = Field(default=None, description="Not supported: must be absent.")
    on_completion: Literal["delete", "keep"] = Field(
        default="delete", description="Stateless runs keep no thread either way."
    )
    # LangGraph's other run fields, sent by its SDKs: accepted; those that ask for what
    # agents here do not have (interrupts, checkpoints to resume from) must be empty.
    context: dict[str, Any] | None = Field(
        default=None, description="LangGraph's run context: accepted and kept with the run."
    )
    stream_resumable: bool = Field(
        default=False, description="Accepted: every stream here resumes with Last-Event-ID."
    )
    checkpoint_during: bool | None = Field(
        default=None, description="Accepted and ignored: every step of a run is durable."
    )
    durability: Literal["sync", "async", "exit"] | None = Field(
        default=None, description="Accepted and ignored: every step of a run is durable."
    )
    feedback_keys: list[str] | None = Field(
        default=None, description="Accepted and ignored (LangSmith feedback)."
    )
    langsmith_tracer: dict[str, Any] | None = Field(
        default=None, description="Accepted and ignored (traces go to OpenTelemetry)."
    )
    strict_resume: bool | None = Field(default=None, description="Accepted and ignored.")
    command: dict[str, Any] | None = Field(
        default=None, description="Not supported: agents here have no interrupts to resume."
    )
    interrupt_before: list[str] | Literal["*"] | None = Field(
        default=None, description="Not supported: must be empty."
    )
    interrupt_after: list[str] | Literal["*"] | None = Field(
        default=None, description="Not supported: must be empty."
    )
    checkpoint: dict[str, Any] | None = Field(
        default=None, description="Not supported: a run starts from its thread's end."
    )
    checkpoint_id: str | None = Field(
        default=None, description="Not supported: a run starts from its thread's end."
    )

    @model_validator(mode="after")
    def _check(self) -> RunCreate:
        if self.webhook is not None:
            raise ValueError("webhook is not supported: follow the run's stream or join it")
        if self.after_seconds is not None:
            raise ValueError("after_seconds is not supported: use a cron (scheduler) instead")
        if self.command:
            raise ValueError("command is not supported: agents here have no interrupts")
        if self.interrupt_before or self.interrupt_after:
            raise ValueError(
                "interrupt_before/interrupt_after are not supported: use a workflow with an "
                "approval step (docs/workflows.md)"
            )
        if self.checkpoint or self.checkpoint_id:
            raise ValueError("checkpoint is not supported: a run starts from its thread's end")
        return self

    @property
    def agent(self) -> str | None:
        return self.agent_id or self.assistant_id

    @property
    def modes(self) -> list[str]:
        return [self.stream_mode] if isinstance(self.stream_mode, str) else list(self.stream_mode)


class Run(BaseModel):
    """A run of an agent."""

    model_config = ConfigDict(populate_by_name=True)

    run_id: str = Field(description="The run's id.")
    thread_id: str | None = Field(description="Its thread; null for a stateless run.")
    agent_id: str = Field(description="The agent run.")
    assistant_id: str = Field(description="The same, by LangGraph's name.")
    created_at: str = Field(description="When it was created.")
    updated_at: str = Field(description="When it last changed.")
    status: Status = Field(description="Its status.")
    metadata: dict[str, Any] = Field(description="Its metadata.")
    # "kwargs" clashes with pydantic's mypy plugin as a field name: aliased.
    run_kwargs: dict[str, Any] = Field(alias="kwargs", description="What it was created with.")
    multitask_strategy: Strategy = Field(description="Its strategy on a busy thread.")
    error: str | None = Field(default=None, description="Why it failed, if it did.")


class RunWaitResponse(BaseModel):
    """A finished run and what it produced."""

    run: Run = Field(description="The run.")
    values: dict[str, Any] = Field(description="The thread's values after the run.")
    messages: list[dict[str, Any]] = Field(description="The messages after the run.")
    output: Any = Field(default=None, description="The agent's final output.")


class ThreadCreate(BaseModel):
    """Payload for creating a thread."""

    model_config = ConfigDict(extra="forbid")
    thread_id: str | None = Field(default=None, pattern=ID_PATTERN, description="Its id.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Its metadata.")
    if_exists: Literal["raise", "do_nothing"] = Field(
        default="raise", description="An existing id: 409, or return the thread."
    )
    supersteps: list[dict[str, Any]] | None = Field(
        default=None,
        description="LangGraph's initial state updates: the messages in their values are the "
        "thread's first items.",
    )
    ttl: dict[str, Any] | None = Field(
        default=None, description="Not supported: threads are kept until deleted."
    )

    @model_validator(mode="after")
    def _check(self) -> ThreadCreate:
        if self.ttl is not None:
            raise ValueError("ttl is not supported: threads are kept until deleted")
        return self


class ThreadCount(BaseModel):
    """Which threads to count."""

    model_config = ConfigDict(extra="forbid")
    metadata: dict[str, Any] | None = Field(default=None, description="Metadata to match.")
    values: dict[str, Any] | None = Field(default=None, description="Not supported if set.")
    status: ThreadStatus | None = Field(default=None, description="Status to match.")


class ThreadHistoryQuery(BaseModel):
    """Which past states of a thread (LangGraph's POST body for its history)."""

    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=10, ge=1, le=1000, description="At most this many.")
    before: str | dict[str, Any] | None = Field(
        default=None, description="Only states before this checkpoint (id, or checkpoint)."
    )
    metadata: dict[str, Any] | None = Field(default=None, description="Not supported if set.")
    checkpoint: dict[str, Any] | None = Field(default=None, description="Not supported if set.")
    select: list[str] | None = Field(default=None, description="Accepted and ignored.")


class ThreadStateUpdate(BaseModel):
    """New messages for a thread's state (LangGraph's update_state)."""

    model_config = ConfigDict(extra="forbid")
    values: dict[str, Any] | list[dict[str, Any]] | None = Field(
        description="{'messages': [...]} (or a list of such): appended to the thread."
    )
    as_node: str | None = Field(default=None, description="Accepted and ignored.")
    checkpoint: dict[str, Any] | None = Field(default=None, description="Not supported if set.")
    checkpoint_id: str | None = Field(default=None, description="Not supported if set.")


class ThreadPrune(BaseModel):
    """Threads to delete (LangGraph's prune)."""

    model_config = ConfigDict(extra="forbid")
    thread_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(
        max_length=1000, description="The threads' ids."
    )
    strategy: Literal["delete"] = Field(default="delete", description="Only delete.")


class ThreadSearch(BaseModel):
    """Payload for searching threads."""

    model_config = ConfigDict(extra="forbid")
    metadata: dict[str, Any] | None = Field(default=None, description="Metadata to match.")
    values: dict[str, Any] | None = Field(default=None, description="Not supported if set.")
    status: ThreadStatus | None = Field(default=None, description="Status to match.")
    limit: int = Field(default=10, ge=1, le=1000, description="Page size.")
    offset: int = Field(default=0, ge=0, le=1_000_000, description="Threads to skip.")


class ThreadPatch(BaseModel):
    """Payload for updating a thread."""

    model_config = ConfigDict(extra="forbid")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Metadata to merge.")


class Thread(BaseModel):
    """A thread: a conversation and its runs."""

    thread_id: str = Field(description="Its id.")
    created_at: str = Field(description="When it was created.")
    updated_at: str = Field(description="When it last changed.")
    metadata: dict[str, Any] = Field(description="Its metadata.")
    status: ThreadStatus = Field(description="idle, busy, interrupted or error.")
    values: dict[str, Any] = Field(description="Its state: the messages.")
    messages: list[dict[str, Any]] | None = Field(default=None, description="Its messages.")


class ThreadState(BaseModel):
    """A thread's state at a checkpoint."""

    checkpoint: dict[str, Any] = Field(description="The checkpoint's identifier.")
    values: dict[str, Any] = Field(description="The state.")
    messages: list[dict[str, Any]] = Field(description="The messages.")
    metadata: dict[str, Any] = Field(description="The checkpoint's metadata.")
    next: list[str] = Field(default_factory=list, description="Steps still to run (none).")
    created_at: str | None = Field(default=None, description="When it was made.")


class StorePut(BaseModel):
    """Store or replace an item."""

    model_config = ConfigDict(extra="forbid")
    namespace: list[str] = Field(max_length=10, description="The namespace path.")
    key: str = Field(min_length=1, max_length=256, description="The item's key.")
    value: dict[str, Any] = Field(description="The item.")
    ttl: float | None = Field(default=None, gt=0, description="Minutes to live.")
    index: bool | list[str] | None = Field(default=None, description="Fields to embed.")


class StoreDelete(BaseModel):
    """Delete an item."""

    model_config = ConfigDict(extra="forbid")
    namespace: list[str] = Field(default_factory=list, max_length=10, description="Namespace.")
    key: str = Field(min_length=1, max_length=256, description="The item's key.")


class StoreSearch(BaseModel):
    """Search items under a namespace prefix."""

    model_config = ConfigDict(extra="forbid")
    namespace_prefix: list[str] | None = Field(default=None, max_length=10, description="Prefix.")
    filter: dict[str, Any] | None = Field(default=None, description="Value fields to match.")
    limit: int = Field(default=10, ge=1, le=1000, description="Page size.")
    offset: int = Field(default=0, ge=0, le=1_000_000, description="Items to skip.")
    query: str | None = Field(default=None, max_length=2000, description="Semantic query.")
    refresh_ttl: bool = Field(default=True, description="Renew the TTL of what is read.")


class StoreNamespaces(BaseModel):
    """List namespaces."""

    model_config = ConfigDict(extra="forbid")
    prefix: list[str] | None = Field(default=None, max_length=10, description="Prefix to match.")
    suffix: list[str] | None = Field(default=None, max_length=10, description="Suffix to match.")
    max_depth: int | None = Field(default=None, ge=1, le=10, description="Truncate to depth.")
    limit: int = Field(default=100, ge=1, le=1000, description="Page size.")
    offset: int = Field(default=0, ge=0, le=1_000_000, description="Namespaces to skip.")


class Item(BaseModel):
    """A stored item."""

    namespace: list[str] = Field(description="Its namespace.")
    key: str = Field(description="Its key.")
    value: dict[str, Any] = Field(description="The item.")
    created_at: str = Field(description="When it was created.")
    updated_at: str = Field(description="When it last changed.")
    score: float | None = Field(default=None, description="Similarity to the query, if any.")


class SearchItemsResponse(BaseModel):
    """Items found."""

    items: list[Item] = Field(description="The items.")


class ListNamespaceResponse(BaseModel):
    """Namespaces found."""

    namespaces: list[list[str]] = Field(description="The namespaces.")
