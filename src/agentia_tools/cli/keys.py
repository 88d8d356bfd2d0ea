"""`agentia keys`: the gateway's API keys (made here, kept hashed in the secret store)."""

from __future__ import annotations

from typing import Annotated, get_args

import typer
from rich.console import Console

from agentia.apikeys import NAME_RE, Scope, describe_limits, parse_model_limits
from agentia.money import micro_usd, usd
from agentia.paths import agentia_home
from agentia_tools.cli.tables import table as table_of
from agentia_tools.runtime import local_keys

keys_app = typer.Typer(help="The gateway's API keys.", no_args_is_help=True)
console = Console()


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for (unique).")],
    scope: Annotated[str, typer.Option(help="read (GET and searches) or write (everything).")] = (
        "write"
    ),
    rate_limit: Annotated[
        int | None, typer.Option(min=1, help="Requests per minute (default: the gateway's).")
    ] = None,
    token_budget: Annotated[
        int | None,
        typer.Option(min=1, help="Model tokens its runs may use per UTC day (default: no budget)."),
    ] = None,
    cost_budget: Annotated[
        str | None,
        typer.Option(
            help="USD its runs' model usage may cost per UTC day, e.g. 5.00 (priced by the "
            "gateway's AGENTIA_MODEL_PRICES; default: no budget)."
        ),
    ] = None,
    model_limit: Annotated[
        list[str] | None,
        typer.Option(
            help="Model requests per minute or per day for one model, e.g. offline=60/min or "
            "openai:gpt-4o=1000/day; repeat for more (default: none).",
        ),
    ] = None,
) -> None:
    """Make a key and print it once: it is stored only as a hash."""
    import re

    if scope not in get_args(Scope):
        why = f"'{scope}' is not a scope: use read or write"
        raise typer.BadParameter(why, param_hint="--scope")
    if not re.match(NAME_RE, name):
        why = f"use letters, digits, space, ._@- ({NAME_RE})"
        raise typer.BadParameter(why, param_hint="NAME")
    cost = None
    if cost_budget is not None:
        try:
            cost = micro_usd(cost_budget)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--cost-budget") from None
        if cost < 1:
            raise typer.BadParameter("a cost budget must be above 0", param_hint="--cost-budget")
    try:
        limits = parse_model_limits(model_limit or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model-limit") from None
    try:
        key, record = local_keys.create_key(
            agentia_home(),
            name,
            scope,  # type: ignore[arg-type]
            rate_limit,
            token_budget,
            cost,
            limits,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="NAME") from None
    typer.echo(key)
    typer.echo(
        f"key {record.id} ({record.scope}) for '{record.name}': keep it now, it is not shown again",
        err=True,
    )
    _reload()


def _reload() -> None:
    if local_keys.reload_gateway_secrets(agentia_home()):
        typer.echo("gateway's sidecar restarted: the change is live within seconds", err=True)


@keys_app.command("list")
def list_keys() -> None:
    """The keys (ids, names, scopes; never the keys)."""
    table = table_of(
        "id", "name", "scope", "rate limit/min", "tokens/day", "USD/day", "model limits", "created"
    )
    for record in local_keys.key_ring(agentia_home()).keys.values():
        limit = str(record.rate_limit_per_minute or "default")
        budget = str(record.token_budget_per_day or "no budget")
        cost = record.cost_budget_micro_usd_per_day
        table.add_row(
            record.id,
            record.name,
            record.scope,
            limit,
            budget,
            usd(cost) if cost else "no budget",
            describe_limits(record.model_limits) or "none",
            record.created_at,
        )
    console.print(table)


@keys_app.command("revoke")
def revoke(id_or_name: Annotated[str, typer.Argument(help="The key's id or name.")]) -> None:
    """Remove a key; gateways refuse it within their refresh interval."""
    try:
        record = local_keys.revoke_key(agentia_home(), id_or_name)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="ID_OR_NAME") from None
    typer.echo(f"revoked key {record.id} ('{record.name}')")
    _reload()
