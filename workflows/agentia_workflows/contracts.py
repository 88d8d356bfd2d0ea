"""Names and typed inputs/outputs of the workflows and activities.

Every workflow and activity takes ONE of these models and returns ONE. The registration
names are stable: they are stored in workflow history, so renaming one orphans the
instances that are running.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

# Registration names (stored in workflow history: never rename).
AGENT_LOOP: Final = "AgentLoop"
RECURRING_AGENT: Final = "RecurringAgent"
FAN_OUT: Final = "FanOut"
MODEL_TURN: Final = "ModelTurn"
TOOL_CALL: Final = "ToolCall"
APPROVAL_EVENT: Final = "approval"  # the external event a reviewer raises

SCHEMA_VERSION: Final = 1


class Contract(BaseModel):
    """Base of every input/output: unknown fields are refused, the version is carried."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(default=SCHEMA_VERSION, description="Contract version.")


class AgentLoopInput(Contract):
    """A durable agent conversation: each message is a user turn, handled in order."""

    agent_id: str = Field(min_length=1, description="Agent definition name (agents/*.yaml).")
    messages: list[str] = Field(min_length=1, max_length=100, description="User turns, in order.")
    max_turns: int = Field(default=10, ge=1, le=100, description="Model turns per message.")
    pause_between_s: float = Field(
        default=0, ge=0, le=30 * 86400, description="Durable sleep between two messages."
    )
    approval_required: list[str] = Field(
        default_factory=list, description="Tool names that wait for a reviewer's approval."
    )
    approval_timeout_s: float = Field(
        default=3600, gt=0, le=30 * 86400, description="How long to wait for the reviewer."
    )
    default_decision: Literal["approve", "reject"] = Field(
        default="reject", description="What happens when no reviewer answers in time."
    )


class StepRecord(Contract):
    """One thing the agent loop did, in order."""

    step: int = Field(description="Step number within the instance (1-based).")
    kind: Literal["model", "tool", "approval"] = Field(description="What kind of step.")
    name: str = Field(description="Tool name, or the agent for a model turn.")
    detail: str = Field(default="", description="Short text: the answer, output or decision.")


class AgentLoopOutput(Contract):
    """What the conversation produced."""

    agent_id: str = Field(description="The agent that ran.")
    outputs: list[str] = Field(description="The final answer to each message, in order.")
    steps: list[StepRecord] = Field(description="Every model turn, tool call and approval.")
    status: Literal["completed", "max_turns"] = Field(description="How the loop ended.")


class ToolCallRequest(Contract):
    """A tool call the model asked for."""

    call_id: str = Field(description="The model's id for the call.")
    name: str = Field(description="Tool name.")
    arguments: str = Field(description="JSON object of arguments, as the model wrote it.")


class ModelTurnInput(Contract):
    """One model turn: the conversation so far."""

    instance_id: str = Field(description="Workflow instance (keys the step ledger).")
    step: int = Field(ge=1, description="Step number (keys the step ledger).")
    agent_id: str = Field(description="Agent definition name.")
    items: list[dict[str, Any]] = Field(description="Conversation items (Responses input form).")


class ModelTurnOutput(Contract):
    """The model's answer: new items, and either tool calls or a final text."""

    items: list[dict[str, Any]] = Field(description="The model's output items, as input items.")
    tool_calls: list[ToolCallRequest] = Field(description="Tool calls to make, in order.")
    text: str | None = Field(default=None, description="Final text when there are no calls.")


class ToolCallInput(Contract):
    """One tool call."""

    instance_id: str = Field(description="Workflow instance (keys the step ledger).")
    step: int = Field(ge=1, description="Step number (keys the step ledger).")
    agent_id: str = Field(description="Agent whose tool this is.")
    call: ToolCallRequest = Field(description="The call to make.")


class ToolCallOutput(Contract):
    """A tool's output and how many times its body actually ran for this step."""

    output: str = Field(description="The tool's output as text.")
    executions: int = Field(ge=1, description="Times the tool body started for this step.")
    replayed: bool = Field(description="True when the recorded output was returned instead.")


class ApprovalDecision(Contract):
    """A reviewer's answer, raised as the ``approval`` external event."""

    approved: bool = Field(description="Run the tool (true) or not.")
    by: str = Field(default="", description="Who decided ('timeout' for the default).")
    note: str = Field(default="", description="Why.")


class RecurringAgentInput(Contract):
    """An agent that sleeps, wakes up, acts, and starts over with a fresh history."""

    agent_id: str = Field(min_length=1, description="Agent definition name.")
    message: str = Field(min_length=1, description="What the agent is asked at each wake-up.")
    every_s: float = Field(gt=0, le=366 * 86400, description="Sleep before each run (durable).")
    runs: int | None = Field(default=None, ge=1, description="Stop after this many; None: never.")
    done: int = Field(default=0, ge=0, description="Runs done so far (carried over).")
    last_output: str | None = Field(default=None, description="Output of the latest run.")


class RecurringAgentOutput(Contract):
    """How many runs happened and what the last one said."""

    runs_done: int = Field(description="Runs done in total (across continue-as-new).")
    last_output: str | None = Field(description="Output of the last run.")


class FanOutInput(Contract):
    """Ask several agents the same thing at once, each as a child workflow."""

    agents: list[str] = Field(min_length=1, max_length=32, description="Agent names.")
    message: str = Field(min_length=1, description="The message every agent gets.")


class AgentAnswer(Contract):
    """One child's answer."""

    agent_id: str = Field(description="The agent.")
    output: str = Field(description="Its final answer.")


class FanOutOutput(Contract):
    """Every child's answer, in the order of the input."""

    answers: list[AgentAnswer] = Field(description="One answer per agent.")


WORKFLOW_INPUTS: Final[dict[str, type[Contract]]] = {
    AGENT_LOOP: AgentLoopInput,
    RECURRING_AGENT: RecurringAgentInput,
    FAN_OUT: FanOutInput,
}
