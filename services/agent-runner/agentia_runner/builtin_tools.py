"""Function tools that need no network and no other service, usable by any agent definition."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from agents import FunctionTool, function_tool

from agentia.safe_math import safe_eval


@function_tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression, e.g. "2 * (3 + 4)"."""
    return str(safe_eval(expression))


@function_tool
def now() -> str:
    """The current date and time in UTC, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@function_tool
async def wait(seconds: float) -> str:
    """Wait up to 60 seconds, then say so (a stand-in for a slow tool)."""
    seconds = max(0.0, min(float(seconds), 60.0))
    await asyncio.sleep(seconds)
    return f"waited {seconds:g}s"


BUILTIN_TOOLS: dict[str, FunctionTool] = {"calculator": calculator, "now": now, "wait": wait}
