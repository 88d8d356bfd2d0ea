"""`agentia usage`: the model usage of a key, per day, against its token budget."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agentia.cli.gateway_client import call

console = Console()


def usage(
    days: Annotated[int, typer.Option(min=1, max=90, help="How many days back.")] = 7,
) -> None:
    """Tokens, model requests and runs of the key in use (AGENTIA_API_KEY or the local key)."""
    body = call("GET", f"/usage?days={days}")
    budget = body["token_budget_per_day"]
    if budget is None:
        typer.echo(f"key {body['key_id']}: no token budget", err=True)
    else:
        typer.echo(
            f"key {body['key_id']}: {body['tokens_used_today']} of {budget} tokens used today "
            f"({body['tokens_left_today']} left)",
            err=True,
        )
    table = Table("day", "tokens", "input", "output", "model requests", "runs")
    for d in body["days"]:
        table.add_row(
            d["day"],
            str(d["tokens"]),
            str(d["input_tokens"]),
            str(d["output_tokens"]),
            str(d["requests"]),
            str(d["runs"]),
        )
    console.print(table)
