"""Register the workflows and activities on a Dapr ``WorkflowRuntime`` under stable names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from dapr.ext.workflow import WorkflowActivityContext, WorkflowRuntime

from agentia_workflows import chat, workflows
from agentia_workflows.activities import AgentActivities
from agentia_workflows.chat_activities import ChatActivities
from agentia_workflows.contracts import (
    AGENT_LOOP,
    CHAT_AGENT,
    CHAT_TOOLS,
    CHAT_TURN,
    FAN_OUT,
    MODEL_TURN,
    RECURRING_AGENT,
    TOOL_CALL,
    ChatToolsInput,
    ChatToolsOutput,
    ChatTurnInput,
    ChatTurnOutput,
    ModelTurnInput,
    ModelTurnOutput,
    ToolCallInput,
    ToolCallOutput,
)

# Runs a coroutine where the activity's clients live (the app's event loop) and awaits it.
RunOn = Callable[[Coroutine[Any, Any, Any]], Awaitable[Any]]


def register(
    runtime: WorkflowRuntime, activities: AgentActivities, chats: ChatActivities, run_on: RunOn
) -> None:
    """Register every workflow and activity of the package on ``runtime``."""
    runtime.register_workflow(workflows.agent_loop, name=AGENT_LOOP)
    runtime.register_workflow(chat.chat_agent, name=CHAT_AGENT)
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

    async def chat_turn(ctx: WorkflowActivityContext, inp: ChatTurnInput) -> ChatTurnOutput:
        result: ChatTurnOutput = await run_on(chats.chat_turn(inp))
        return result

    async def chat_tools(ctx: WorkflowActivityContext, inp: ChatToolsInput) -> ChatToolsOutput:
        result: ChatToolsOutput = await run_on(chats.chat_tools(inp))
        return result

    runtime.register_activity(chat_turn, name=CHAT_TURN)
    runtime.register_activity(chat_tools, name=CHAT_TOOLS)
