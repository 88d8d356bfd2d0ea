"""`agentia postgres …`: the local mesh's PostgreSQL cluster."""

from __future__ import annotations

import typer
from rich.console import Console

from agentia.paths import agentia_home
from agentia_tools.runtime.infra_servers import ServerSetupError
from agentia_tools.runtime.pg_upgrade import upgrade_cluster

console = Console()
postgres_app = typer.Typer(help="The local mesh's PostgreSQL cluster.", no_args_is_help=True)


@postgres_app.command("upgrade")
def upgrade() -> None:
    """Move the cluster to the bundled PostgreSQL 16 with pgvector (pg_upgrade; the mesh
    must be down). The old cluster is kept beside it."""
    try:
        said = upgrade_cluster(agentia_home(), lambda m: console.print(f"• {m}"))
    except ServerSetupError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(said)
