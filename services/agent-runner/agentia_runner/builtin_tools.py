"""Function tools that need no network and no other service, usable by any agent definition."""

from __future__ import annotations

import ast
import asyncio
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agents import FunctionTool, function_tool

_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def safe_eval(expression: str) -> float | int:
    """Arithmetic only: numbers and + - * / // % ** and parentheses; anything else is refused."""
    if len(expression) > 200:
        raise ValueError("expression longer than 200 characters")

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.operand))
        raise ValueError(f"not allowed in an expression: {type(node).__name__}")

    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {exc.msg}") from None
    result = walk(tree)
    return int(result) if isinstance(result, float) and result.is_integer() else result


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
