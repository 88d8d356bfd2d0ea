"""A run as the gateway records it (``gw-run:{run_id}`` in the state store), and how it is
shown to Agent Protocol clients. Plain data: no Dapr, no FastAPI."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentia.events import FINAL, Status
from agentia_gateway.schemas import Strategy


class RunKwargs(BaseModel):
    """What the client asked the run to do (the Agent Protocol's ``Run.kwargs``)."""

    model_config = ConfigDict(extra="allow")

    input: Any = Field(default=None, description="The run's input as the client sent it.")
    stream_mode: list[str] = Field(default_factory=list, description="The stream modes asked.")
    config: Any = Field(default=None, description="The client's config, kept as sent.")
    context: Any = Field(default=None, description="The client's context, kept as sent.")


class RunRecord(BaseModel):
    """The gateway's record of one run."""

    # Stored and shown as ``kwargs`` (the Agent Protocol's name); ``asked`` in code, since a
    # field named ``kwargs`` clashes with the constructor's own ``**kwargs``.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, serialize_by_alias=True)

    run_id: str = Field(description="The run.")
    thread_id: str | None = Field(default=None, description="Its thread; None: stateless.")
    agent_id: str = Field(description="The agent it runs (the Agent Protocol's assistant).")
    status: Status = Field(description="pending, running, or how it ended.")
    created_at: str = Field(description="When it was recorded (ISO 8601, UTC).")
    updated_at: str = Field(description="When the record last changed (ISO 8601, UTC).")
    metadata: dict[str, Any] = Field(default_factory=dict, description="The client's metadata.")
    asked: RunKwargs = Field(
        default_factory=RunKwargs, alias="kwargs", description="What it was asked to do."
    )
    multitask_strategy: Strategy = Field(
        default="reject", description="What a run created while another holds the thread does."
    )
    on_disconnect: Literal["cancel", "continue"] | None = Field(
        default=None, description="What a streamed run does when its client goes away."
    )
    item_count_before: int = Field(
        default=0, ge=0, description="The thread's items before it started (rollback keeps them)."
    )
    owner: str | None = Field(default=None, description="The key whose budget it counts to.")
    queued: str | None = Field(
        default=None, description="Why it waits on runs.batch (over budget); None: it does not."
    )
    rollback: bool = Field(default=False, description="Cancelled with rollback: undo it.")
    output: Any = Field(default=None, description="The final output (success).")
    error: str | None = Field(default=None, description="Why it failed or was cancelled.")
    usage: dict[str, Any] | None = Field(default=None, description="Tokens and requests.")
    # A fact of the create call (it took the thread's lane), not of the run: never stored.
    admitted: bool = Field(default=False, exclude=True, description="This create took the lane.")

    @property
    def final(self) -> bool:
        """Whether the run has ended (the gateway never changes its status again)."""
        return self.status in FINAL

    def as_json(self) -> dict[str, Any]:
        """The record as stored: plain JSON values, without what is not the run's."""
        return self.model_dump(mode="json")

    def public(self) -> dict[str, Any]:
        """The record as the Agent Protocol's Run."""
        return {
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "status": self.status.value,
            "metadata": self.metadata,
            "kwargs": self.asked.model_dump(mode="json"),
            "agent_id": self.agent_id,
            "assistant_id": self.agent_id,
            "multitask_strategy": self.multitask_strategy,
            "error": self.error,
        }
