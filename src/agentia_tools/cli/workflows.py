"""`agentia workflows`: long-lived agents (Dapr Workflows) through the gateway's /workflows API."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console

from agentia_tools.cli.gateway_client import call
from agentia_tools.cli.tables import table as table_of
from agentia_workflows.contracts import WORKFLOW_INPUTS

workflows_app = typer.Typer(
    help="Long-lived agents: start, status, list, raise events, pause, resume, terminate, purge.",
    no_args_is_help=True,
)
console = Console()
TERMINAL = {"COMPLETED", "FAILED", "TERMINATED"}


def _json(text: str | None, param: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(
            f"not JSON: {exc.msg} at column {exc.colno}", param_hint=param
        ) from None


def _show(body: Any) -> None:
    typer.echo(json.dumps(body, indent=2))


def _wait(instance_id: str, timeout: float) -> dict[str, Any]:
    """Poll until the instance ends, printing each change of status or phase."""
    deadline, last = time.monotonic() + timeout, ""
    while True:
        state: dict[str, Any] = call("GET", f"/workflows/{instance_id}")
        custom = state.get("custom_status")
        phase = custom.get("phase") if isinstance(custom, dict) else None
        now = f"{state['status']}" + (f" ({phase})" if phase else "")
        if now != last:
            typer.echo(f"{instance_id}: {now}", err=True)
            last = now
        if state["status"] in TERMINAL:
            return state
        if time.monotonic() > deadline:
            typer.echo(f"still {now} after {timeout:.0f} s", err=True)
            raise typer.Exit(3)
        time.sleep(1)


@workflows_app.command("start")
def start(
    workflow: Annotated[str, typer.Argument(help=f"One of: {', '.join(WORKFLOW_INPUTS)}.")],
    input_json: Annotated[str, typer.Option("--input", help="The workflow's input as JSON.")],
    instance_id: Annotated[
        str | None, typer.Option("--id", help="Instance id (new if absent).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the end and print the output.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 600,
) -> None:
    """Start a workflow instance and print its id (or, with --wait, its final state)."""
    body: dict[str, Any] = {"workflow": workflow, "input": _json(input_json, "--input")}
    if instance_id:
        body["instance_id"] = instance_id
    started = call("POST", "/workflows", body)
    if not wait:
        typer.echo(started["instance_id"])
        return
    _show(_wait(started["instance_id"], timeout))


@workflows_app.command("status")
def status(
    instance_id: str,
    wait: Annotated[bool, typer.Option(help="Wait until it ends.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 600,
) -> None:
    """An instance's status, custom status (its phase), input and output."""
    _show(_wait(instance_id, timeout) if wait else call("GET", f"/workflows/{instance_id}"))


@workflows_app.command("steps")
def steps(instance_id: str) -> None:
    """The instance's step ledger: each model turn and tool call, done once."""
    _show(call("GET", f"/workflows/{instance_id}/steps"))


@workflows_app.command("list")
def list_instances(
    page_size: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    continuation_token: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Instances known to the workflow engine, with their status."""
    query = f"?page_size={page_size}&details=true"
    if continuation_token:
        query += f"&continuation_token={continuation_token}"
    body = call("GET", "/workflows" + query)
    table = table_of("instance", "workflow", "status", "updated")
    for item in body.get("instances") or []:
        table.add_row(
            item["instance_id"],
            item.get("workflow") or "",
            item["status"],
            item.get("last_updated_at") or "",
        )
    console.print(table)
    if body.get("continuation_token"):
        typer.echo(f"more: --continuation-token {body['continuation_token']}", err=True)


@workflows_app.command("raise")
def raise_event(
    instance_id: str,
    event: Annotated[str, typer.Argument(help="Event name, e.g. approval.")],
    data: Annotated[str | None, typer.Option(help="Event payload as JSON.")] = None,
) -> None:
    """Raise an external event, e.g. approve a waiting step: --data '{"approved": true}'."""
    _show(call("POST", f"/workflows/{instance_id}/events/{event}", _json(data, "--data")))


def _control(action: str, instance_id: str) -> None:
    _show(call("POST", f"/workflows/{instance_id}/{action}"))


@workflows_app.command("pause")
def pause(instance_id: str) -> None:
    """Suspend an instance; it keeps its state until resumed."""
    _control("pause", instance_id)


@workflows_app.command("resume")
def resume(instance_id: str) -> None:
    """Resume a paused instance."""
    _control("resume", instance_id)


@workflows_app.command("terminate")
def terminate(instance_id: str) -> None:
    """Stop an instance for good (its history stays until purged)."""
    _control("terminate", instance_id)


@workflows_app.command("purge")
def purge(instance_id: str) -> None:
    """Delete a finished instance's history and step ledger."""
    _show(call("DELETE", f"/workflows/{instance_id}"))
