"""`agentia schedules`: scheduled agent runs (the gateway's /runs/crons)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from agentia_tools.cli.gateway_client import call
from agentia_tools.cli.tables import table as table_of

schedules_app = typer.Typer(help="Scheduled agent runs (cron or interval).", no_args_is_help=True)
# Whole ids even when piped (rich would otherwise fit the table into 80 columns).
console = Console(width=None if sys.stdout.isatty() else 200)


@schedules_app.command("create")
def create(
    agent: Annotated[str, typer.Argument(help="Agent to run.")],
    text: Annotated[str, typer.Argument(help="The run's input.")],
    cron: Annotated[
        str | None, typer.Option(help="Cron: 5 fields, or 6 with seconds first.")
    ] = None,
    every: Annotated[float | None, typer.Option(min=1, help="Or: every N seconds.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of --cron.")] = "UTC",
    thread: Annotated[str | None, typer.Option(help="Run on this thread each time.")] = None,
) -> None:
    """Create a schedule and print its id."""
    if (cron is None) == (every is None):
        raise typer.BadParameter("give exactly one of --cron and --every", param_hint="--cron")
    body: dict[str, Any] = {"assistant_id": agent, "input": text, "timezone": timezone}
    if cron is not None:
        body["schedule"] = cron
    else:
        body["interval_s"] = every
    path = f"/threads/{thread}/runs/crons" if thread else "/runs/crons"
    created = call("POST", path, body)
    typer.echo(created["cron_id"])
    typer.echo(f"next run: {created['next_run_date']}", err=True)


@schedules_app.command("list")
def list_schedules(
    agent: Annotated[str | None, typer.Option(help="Only this agent's.")] = None,
) -> None:
    """Schedules, with their next run and how often they ran."""
    body: dict[str, Any] = {"limit": 1000}
    if agent:
        body["assistant_id"] = agent
    table = table_of("id", "agent", "when", "next run", "runs", "last run")
    for c in call("POST", "/runs/crons/search", body):
        when = c["schedule"] or (
            f"every {c['interval_s']:g}s" if c["interval_s"] else f"once at {c.get('at')}"
        )
        table.add_row(
            c["cron_id"],
            c["assistant_id"] or "",
            f"{when} {c['timezone']}",
            c["next_run_date"] or "-",
            str(c["runs"]),
            c["last_run_id"] or "-",
        )
    console.print(table)


@schedules_app.command("get")
def get(cron_id: str) -> None:
    """One schedule, as JSON."""
    typer.echo(json.dumps(call("GET", f"/runs/crons/{cron_id}"), indent=2))


@schedules_app.command("delete")
def delete(cron_id: str) -> None:
    """Stop and remove a schedule."""
    call("DELETE", f"/runs/crons/{cron_id}")
    typer.echo(f"deleted {cron_id}", err=True)
