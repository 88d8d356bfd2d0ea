"""Register the workflows and activities on a Dapr ``WorkflowRuntime`` under stable names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from dapr.ext.workflow import WorkflowActivityContext, WorkflowRuntime

from agentia_workflows import workflows
from agentia_workflows.activities import AgentActivities
from agentia_workflows.contracts import (
    AGENT_LOOP,
    FAN_OUT,
    MODEL_TURN,
    RECURRING_AGENT,
    TOOL_CALL,
    ModelTurnInput,
    ModelTurnOutput,
    ToolCallInput,
    ToolCallOutput,
)

# Runs a coroutine where the activity's clients live (the app's event loop) and awaits it.
RunOn = Callable[[Coroutine[Any, Any, Any]], Awaitable[Any]]


def register(runtime: WorkflowRuntime, activities: AgentActivities, run_on: RunOn) -> None:
    """Register every workflow and activity of the package on ``runtime``."""
    runtime.register_workflow(workflows.agent_loop, name=AGENT_LOOP)
    runtime.register_workflow(workflows.recurring_agent, name=RECURRING_AGENT)
    runtime.register_workflow(workflows.fan_out, name=FAN_OUT)

    async def model_turn(ctx: WorkflowActivityContext, inp: ModelTurnInput) -> ModelTurnOutput:
        result: ModelTurnOutput = await run_on(activities.model_turn(inp))
        return result

    async def tool_call(ctx: WorkflowActivityContext, inp: ToolCallInput) -> ToolCallOutput:
        result: ToolCallOutput = await run_on(activities.tool_call(inp))
        return result

    runtime.register_activity(model_turn, name=MODEL_TURN)
    runtime.register_activity(tool_call, name=TOOL_CALL)
