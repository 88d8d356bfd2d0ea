"""`agentia usage`: the model usage of a key, per day and per model, against its budgets."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from agentia_tools.cli.gateway_client import call
from agentia_tools.cli.tables import table as table_of

console = Console()


def _budget_lines(body: dict[str, Any]) -> list[str]:
    key = body["key_id"]
    budget = body["token_budget_per_day"]
    lines = [
        f"key {key}: no token budget"
        if budget is None
        else f"key {key}: {body['tokens_used_today']} of {budget} tokens used today "
        f"({body['tokens_left_today']} left)"
    ]
    cost_budget = body.get("cost_budget_per_day_usd")
    spent = body.get("cost_used_today_usd", "0.000000")
    lines.append(
        f"key {key}: {spent} USD used today, no cost budget"
        if cost_budget is None
        else f"key {key}: {spent} of {cost_budget} USD used today "
        f"({body['cost_left_today_usd']} left)"
    )
    for model, limit in (body.get("model_limits") or {}).items():
        parts = []
        if limit.get("per_minute"):
            parts.append(f"{limit['requests_this_minute']} of {limit['per_minute']} this minute")
        if limit.get("per_day"):
            parts.append(f"{limit['requests_today']} of {limit['per_day']} today")
        lines.append(f"key {key}: requests to '{model}': {', '.join(parts)}")
    return lines


def usage(
    days: Annotated[int, typer.Option(min=1, max=90, help="How many days back.")] = 7,
) -> None:
    """Tokens, model requests, runs and cost of the key in use (AGENTIA_API_KEY or the local
    key), per day and per model."""
    body = call("GET", f"/usage?days={days}")
    for line in _budget_lines(body):
        typer.echo(line, err=True)
    table = table_of("day", "model", "tokens", "input", "output", "model requests", "runs", "USD")
    for d in body["days"]:
        table.add_row(
            d["day"],
            "all",
            str(d["tokens"]),
            str(d["input_tokens"]),
            str(d["output_tokens"]),
            str(d["requests"]),
            str(d["runs"]),
            d.get("cost_usd", ""),
        )
        for m in d.get("models", []):
            table.add_row(
                "",
                m["model"] if m.get("priced", True) else f"{m['model']} (unpriced)",
                str(m["tokens"]),
                str(m["input_tokens"]),
                str(m["output_tokens"]),
                str(m["requests"]),
                str(m["runs"]),
                m["cost_usd"],
            )
    console.print(table)
