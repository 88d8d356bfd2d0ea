"""An offline model for demos and tests: no network, deterministic, plainly named.

It implements the Agents SDK's ``Model`` interface, so runs take the same code path as with
a real model: the SDK's own loop, tool calls, handoffs, structured output and streaming
deltas. What it answers is decided by simple rules on the conversation:

- after a tool result, it answers with that result;
- when the user names an agent it can hand off to, it hands off;
- when the user names one of its tools, it calls it, with the JSON object in the message
  (or the rest of the message) as arguments;
- with an output type, it answers with a JSON value of that schema;
- otherwise it echoes the user, prefixed ``[offline model]`` so no one mistakes it for a real one.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from agents import Handoff, Model, ModelProvider, ModelResponse, ModelSettings, ModelTracing, Tool
from agents.agent_output import AgentOutputSchemaBase
from agents.items import TResponseInputItem, TResponseOutputItem, TResponseStreamEvent
from agents.tracing import GenerationSpanData, Span, generation_span
from agents.usage import Usage
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionToolCall,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

OFFLINE_MODEL_NAME = "agentia-offline"
PREFIX = "[offline model]"


def _text_of(item: Any) -> str:
    content = item.get("content") if isinstance(item, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _last_user_text(items: list[Any]) -> str:
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == "user":
            return _text_of(item)
    return ""


def _output_text(output: Any) -> str:
    """A tool result as text: MCP tools return content parts, function tools a string."""
    if isinstance(output, list):
        return " ".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
    return str(output)


def _json_in(text: str) -> dict[str, Any] | None:
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        return None
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def example_of(schema: dict[str, Any], text: str, defs: dict[str, Any] | None = None) -> Any:
    """A value that satisfies ``schema`` (the subset the SDK produces for output types)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return example_of(defs[schema["$ref"].split("/")[-1]], text, defs)
    if "anyOf" in schema:
        return example_of(schema["anyOf"][0], text, defs)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example_of(sub, text, defs) for name, sub in props.items()}
    if kind == "array":
        return [example_of(schema.get("items", {}), text, defs)]
    if kind == "integer":
        return len(text.split())
    if kind == "number":
        return float(len(text.split()))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text


def _arguments_for(tool: Tool, text: str) -> dict[str, Any]:
    given = _json_in(text)
    if given is not None:
        return given
    schema: dict[str, Any] = getattr(tool, "params_json_schema", {}) or {}
    rest = text.split(tool.name, 1)[-1].strip(" :,.")
    return {name: example_of(sub, rest) for name, sub in schema.get("properties", {}).items()}


class OfflineModel(Model):
    """The rule-based model described in the module docstring."""

    def __init__(self, name: str = OFFLINE_MODEL_NAME) -> None:
        self.name = name

    def decide(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff[Any, Any]],
    ) -> TResponseOutputItem:
        items: list[Any] = (
            [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        )
        last = items[-1] if items else {}
        if isinstance(last, dict) and last.get("type") == "function_call_output":
            calls = {
                i.get("call_id"): i.get("name")
                for i in items
                if isinstance(i, dict) and i.get("type") == "function_call"
            }
            name = str(calls.get(last.get("call_id"), "the tool"))
            if not any(h.tool_name == name for h in handoffs) and not name.startswith(
                "transfer_to_"
            ):
                return self._message(
                    f"{PREFIX} {name} returned: {_output_text(last.get('output'))}", output_schema
                )
        text = _last_user_text(items)
        if isinstance(last, dict) and last.get("type") == "function_call_output":
            # Handed off to us: answer the user, do not hand off again.
            return self._message(f"{PREFIX} You said: {text}", output_schema, text)
        lowered = text.lower()
        for handoff in handoffs:
            if handoff.agent_name.lower() in lowered:
                return self._call(handoff.tool_name, {})
        for tool in tools:
            if tool.name.lower() in lowered:
                return self._call(tool.name, _arguments_for(tool, text))
        return self._message(f"{PREFIX} You said: {text}", output_schema, text)

    def _call(self, name: str, arguments: dict[str, Any]) -> ResponseFunctionToolCall:
        return ResponseFunctionToolCall(
            id=f"fc_{uuid.uuid4().hex}",
            call_id=f"call_{uuid.uuid4().hex}",
            name=name,
            arguments=json.dumps(arguments),
            type="function_call",
            status="completed",
        )

    def _message(
        self, text: str, output_schema: AgentOutputSchemaBase | None, user_text: str = ""
    ) -> ResponseOutputMessage:
        if output_schema is not None and not output_schema.is_plain_text():
            value = example_of(output_schema.json_schema(), user_text or text)
            if output_schema.is_strict_json_schema() is False and not isinstance(value, dict):
                value = {"response": value}
            text = json.dumps(value)
        return ResponseOutputMessage(
            id=f"msg_{uuid.uuid4().hex}",
            content=[ResponseOutputText(text=text, type="output_text", annotations=[])],
            role="assistant",
            status="completed",
            type="message",
        )

    @staticmethod
    def _usage(input: str | list[TResponseInputItem], output: TResponseOutputItem) -> Usage:
        in_tokens = len(json.dumps(input, default=str).split())
        out_tokens = len(output.model_dump_json().split())
        return Usage(
            requests=1,
            input_tokens=in_tokens,
            output_tokens=out_tokens,
            total_tokens=in_tokens + out_tokens,
        )

    def _span(self, tracing: ModelTracing) -> Span[GenerationSpanData]:
        return generation_span(model=self.name, disabled=tracing.is_disabled())

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff[Any, Any]],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any,
    ) -> ModelResponse:
        with self._span(tracing) as span:
            output = self.decide(system_instructions, input, tools, output_schema, handoffs)
            usage = self._usage(input, output)
            span.span_data.usage = _usage_dict(usage)
        return ModelResponse(output=[output], usage=usage, response_id=None)

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff[Any, Any]],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any,
    ) -> AsyncIterator[TResponseStreamEvent]:
        # A model call as the SDK's own models trace theirs (agent-runner times it from here).
        with self._span(tracing) as span:
            output = self.decide(system_instructions, input, tools, output_schema, handoffs)
            usage = self._usage(input, output)
            span.span_data.usage = _usage_dict(usage)
        seq = iter(range(1_000_000))
        yield ResponseCreatedEvent(
            response=self._response([], usage), type="response.created", sequence_number=next(seq)
        )
        if isinstance(output, ResponseOutputMessage):
            text = output.content[0].text  # type: ignore[union-attr]
            empty = output.model_copy(update={"content": [], "status": "in_progress"})
            yield ResponseOutputItemAddedEvent(
                item=empty,
                output_index=0,
                type="response.output_item.added",
                sequence_number=next(seq),
            )
            part = ResponseOutputText(text="", type="output_text", annotations=[])
            yield ResponseContentPartAddedEvent(
                item_id=output.id,
                output_index=0,
                content_index=0,
                part=part,
                type="response.content_part.added",
                sequence_number=next(seq),
            )
            for word in re.findall(r"\S+\s*", text):
                yield ResponseTextDeltaEvent(
                    item_id=output.id,
                    output_index=0,
                    content_index=0,
                    delta=word,
                    logprobs=[],
                    type="response.output_text.delta",
                    sequence_number=next(seq),
                )
            yield ResponseContentPartDoneEvent(
                item_id=output.id,
                output_index=0,
                content_index=0,
                part=output.content[0],
                type="response.content_part.done",
                sequence_number=next(seq),
            )
        yield ResponseOutputItemDoneEvent(
            item=output,
            output_index=0,
            type="response.output_item.done",
            sequence_number=next(seq),
        )
        yield ResponseCompletedEvent(
            response=self._response([output], usage),
            type="response.completed",
            sequence_number=next(seq),
        )

    def _response(self, output: list[TResponseOutputItem], usage: Usage) -> Response:
        return Response(
            id=f"resp_{uuid.uuid4().hex}",
            created_at=0,
            model=self.name,
            object="response",
            output=output,
            tool_choice="auto",
            tools=[],
            top_p=None,
            parallel_tool_calls=False,
            status="completed",
            usage=ResponseUsage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                total_tokens=usage.total_tokens,
                input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
                output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
            ),
        )


class OfflineModelProvider(ModelProvider):
    """Hands out :class:`OfflineModel` whatever model name is asked for."""

    def get_model(self, model_name: str | None) -> Model:
        return OfflineModel(model_name or OFFLINE_MODEL_NAME)


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
