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
CHAT_AGENT: Final = "ChatAgent"
CHAT_TURN: Final = "ChatTurn"
CHAT_TOOLS: Final = "ChatTools"
MESSAGE_EVENT: Final = "message"  # a user turn for a ChatAgent: {"text": ...} or {"end": true}

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


class ChatAgentInput(Contract):
    """A chat agent that lives as long as its users talk to it.

    Each user turn arrives as a ``message`` event. With ``claim_check`` (the default) the
    transcript lives in a memory-service thread and the workflow history carries only item
    counts, hashes and short previews; every ``generation`` messages the instance continues
    as new, so its history stays under a fixed bound however long the conversation."""

    agent_id: str = Field(min_length=1, description="Agent definition name.")
    thread_id: str | None = Field(
        default=None, description="Memory thread holding the transcript (default: instance id)."
    )
    max_turns: int = Field(default=10, ge=1, le=100, description="Model turns per message.")
    context_items: int = Field(
        default=40, ge=2, le=1000, description="Latest transcript items the model is shown."
    )
    generation: int = Field(
        default=20, ge=1, le=10_000, description="Messages between two continue-as-new."
    )
    idle_timeout_s: float = Field(
        default=30 * 86400, gt=0, description="End when no message arrives for this long."
    )
    claim_check: bool = Field(
        default=True,
        description="False: carry the whole transcript in the history (for comparison only).",
    )
    messages_done: int = Field(default=0, ge=0, description="Messages handled so far.")
    step: int = Field(default=0, ge=0, description="Steps taken so far (keys the ledger).")
    item_count: int = Field(default=0, ge=0, description="Transcript items so far.")
    last_answer: str = Field(default="", description="Preview of the latest answer.")
    transcript: list[dict[str, Any]] = Field(
        default_factory=list, description="Without claim_check only: the whole transcript."
    )


class ChatTurnInput(Contract):
    """One model turn of a ChatAgent: append ``new_items``, then ask the model."""

    instance_id: str = Field(description="Workflow instance (keys the step ledger).")
    step: int = Field(ge=1, description="Step number (keys the step ledger).")
    agent_id: str = Field(description="Agent definition name.")
    thread_id: str = Field(description="Memory thread of the transcript.")
    item_count: int = Field(ge=0, description="Transcript items before this step.")
    new_items: list[dict[str, Any]] = Field(description="Items to append first (the user turn).")
    context_items: int = Field(ge=2, description="Latest items the model is shown.")
    transcript: list[dict[str, Any]] | None = Field(
        default=None, description="Without claim_check: the whole transcript so far."
    )
    stream_id: str | None = Field(
        default=None, description="Run id the step's events are published under (runs.events)."
    )
    seq_start: int = Field(default=0, ge=0, description="Seq of the step's first event.")


class ChatTurnOutput(Contract):
    """What the history keeps of a model turn: references, not payloads."""

    item_count: int = Field(ge=0, description="Transcript items after this step.")
    sha256: str = Field(description="SHA-256 of the items this step appended.")
    tool_calls: list[ToolCallRequest] = Field(description="Tool calls the model asked for.")
    preview: str = Field(description="First 200 characters of the final text, if any.")
    final: bool = Field(description="True when the model answered instead of calling tools.")
    items: list[dict[str, Any]] | None = Field(
        default=None, description="Without claim_check: the items themselves."
    )
    events: int = Field(default=0, ge=0, description="Events the step published.")


class ChatToolsInput(Contract):
    """The tool calls of one model turn, run and appended to the transcript."""

    instance_id: str = Field(description="Workflow instance (keys the step ledger).")
    step: int = Field(ge=1, description="Step number of the first call.")
    agent_id: str = Field(description="Agent whose tools these are.")
    thread_id: str = Field(description="Memory thread of the transcript.")
    item_count: int = Field(ge=0, description="Transcript items before this step.")
    calls: list[ToolCallRequest] = Field(min_length=1, description="The calls, in order.")
    claim_check: bool = Field(description="Append to the thread (True) or return the items.")
    stream_id: str | None = Field(
        default=None, description="Run id the step's events are published under (runs.events)."
    )
    seq_start: int = Field(default=0, ge=0, description="Seq of the step's first event.")


class ChatToolsOutput(Contract):
    """The calls' outputs, by reference (or inline without claim_check)."""

    item_count: int = Field(ge=0, description="Transcript items after the outputs.")
    sha256: str = Field(description="SHA-256 of the output items appended.")
    executions: list[int] = Field(description="Times each tool body started (1 = once).")
    items: list[dict[str, Any]] | None = Field(
        default=None, description="Without claim_check: the output items themselves."
    )
    events: int = Field(default=0, ge=0, description="Events the step published.")


class ChatAgentOutput(Contract):
    """How a ChatAgent ended."""

    messages_done: int = Field(description="Messages handled in total.")
    last_answer: str = Field(description="Preview of the latest answer.")
    thread_id: str = Field(description="Where the transcript is.")
    ended: Literal["end", "idle"] = Field(description="An end event, or no message in time.")


WORKFLOW_INPUTS: Final[dict[str, type[Contract]]] = {
    AGENT_LOOP: AgentLoopInput,
    CHAT_AGENT: ChatAgentInput,
    RECURRING_AGENT: RecurringAgentInput,
    FAN_OUT: FanOutInput,
}
