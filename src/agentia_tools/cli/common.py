"""What every `agentia` command module shares: the consoles, progress lines, the one-line
failure, the mesh's health table and bringing the mesh up."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from agentia.paths import agentia_home
from agentia_tools.cli.tables import fold
from agentia_tools.runtime import orchestrate
from agentia_tools.runtime.daprbin import DaprBinariesError
from agentia_tools.runtime.health import Probe
from agentia_tools.runtime.infra import InfraError
from agentia_tools.runtime.orchestrate import MeshError
from agentia_tools.runtime.supervisor import SupervisorError

console = Console()
err = Console(stderr=True)


def progress(msg: str) -> None:
    console.print(f"[dim]•[/dim] {msg}")


def fail(msg: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/bold red] {msg}", soft_wrap=True)
    return typer.Exit(code)


def probe_table(probes: list[Probe]) -> Table:
    table = Table(title="Agentia mesh", show_lines=False)
    for col in ("part", "kind", "state", "detail"):
        table.add_column(col)
    for p in probes:
        state = "[green]healthy[/green]" if p.ok else "[red]down[/red]"
        table.add_row(p.name, p.kind, state, p.detail if not p.ok else (p.url or p.detail))
    return fold(table)


def mesh_up(model: str | None = None, broker: str | None = None) -> list[Probe]:
    """Start whatever of the mesh is not running; a start-up error is a CLI error."""
    try:
        return orchestrate.up(agentia_home(), progress, model, broker)
    except (MeshError, InfraError, DaprBinariesError, SupervisorError) as exc:
        raise fail(str(exc)) from None
