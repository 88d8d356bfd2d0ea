"""Between the Agent Protocol's messages and the Agents SDK's items (Responses API input items,
which is what agent-runner's sessions keep in the memory service). No Dapr here."""

from __future__ import annotations

import json
from typing import Any

ROLES = {"user", "assistant", "system", "developer"}


class BadInput(ValueError):
    """The run's input cannot be given to an agent; the message says which part and why."""


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, block in enumerate(content):
            if not isinstance(block, dict) or not isinstance(block.get("text", ""), str):
                raise BadInput(f"{where}.content[{i}] must be a text block {{type, text}}")
            parts.append(block.get("text", ""))
        return "".join(parts)
    raise BadInput(f"{where}.content must be a string or a list of text blocks")


def to_items(messages: list[dict[str, Any]], where: str = "messages") -> list[dict[str, Any]]:
    """Chat messages as SDK input items ({role, content} with text content)."""
    items = []
    for i, msg in enumerate(messages):
        at = f"{where}[{i}]"
        if not isinstance(msg, dict):
            raise BadInput(f"{at} must be an object with role and content")
        role = msg.get("role") or {"human": "user", "ai": "assistant"}.get(str(msg.get("type")))
        if role not in ROLES:
            raise BadInput(f"{at}.role must be one of {sorted(ROLES)} (got {role!r})")
        items.append({"role": role, "content": _text(msg.get("content"), at)})
    return items


def run_input(input_value: Any, messages: list[dict[str, Any]] | None) -> str | list[Any]:
    """What agent-runner gets: text, or a list of input items."""
    if messages:
        return to_items(messages)
    if input_value is None:
        raise BadInput("input: give the agent something: text, messages, or {'messages': [...]}")
    if isinstance(input_value, str):
        if not input_value.strip():
            raise BadInput("input: the text is empty")
        return input_value
    if isinstance(input_value, dict) and "messages" in input_value:
        msgs = input_value["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise BadInput("input.messages must be a non-empty list of messages")
        return to_items(msgs, "input.messages")
    if isinstance(input_value, list):
        if not input_value:
            raise BadInput("input: the list is empty")
        return to_items(input_value, "input")
    return json.dumps(input_value)  # numbers, booleans, other objects: as JSON text


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(b.get("text", "")) for b in content if isinstance(b, dict) and "text" in b
        )
    return "" if content is None else str(content)


def to_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Session items as Agent Protocol messages (tool calls and results included)."""
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        kind = item.get("type", "message")
        mid = str(item.get("id") or f"item-{i}")
        if kind == "message" or ("role" in item and kind not in ("function_call",)):
            out.append(
                {
                    "role": item.get("role", "assistant"),
                    "content": _content_text(item.get("content")),
                    "id": mid,
                }
            )
        elif kind == "function_call":
            call = {
                "name": item.get("name"),
                "args": item.get("arguments"),
                "id": item.get("call_id"),
            }
            out.append({"role": "assistant", "content": "", "id": mid, "tool_calls": [call]})
        elif kind == "function_call_output":
            out.append(
                {
                    "role": "tool",
                    "content": _content_text(item.get("output")),
                    "id": mid,
                    "tool_call_id": item.get("call_id"),
                }
            )
    return out


def input_messages(value: str | list[Any]) -> list[dict[str, Any]]:
    """The run's input as messages (for a stateless run's values)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value, "id": "input-0"}]
    return [{**m, "id": f"input-{i}"} for i, m in enumerate(value)]
