"""`agentia trace RUN_ID`: a run's trace as a tree, from the local trace store.

Every app and sidecar of the local mesh exports its spans to the trace store
(`agentia_tools.runtime.tracestore`); the run's spans are found by their ``agentia.run_id``
attribute and the whole trace they belong to is printed: the gateway's request, the
broker hop, agent-runner's run with the Agents SDK's agent, model and tool spans, the MCP
tool server, memory, and each sidecar in between.
"""

from __future__ import annotations

import json
import os
import time
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.tree import Tree

from agentia import names

console = Console()
SETTLE_S = 2.0  # after the first spans of a fresh run, how long to let the others arrive


def store_url() -> str:
    default = f"http://127.0.0.1:{names.TRACESTORE_PORT}"
    return os.environ.get("AGENTIA_TRACESTORE_URL", default).rstrip("/")


def spans_of(run_id: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{store_url()}/api/runs/{run_id}", timeout=10)
    resp.raise_for_status()
    return list(resp.json()["spans"])


def build_tree(spans: list[dict[str, Any]]) -> list[Tree]:
    """One tree per root (a span whose parent is not among them), children by start time."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in sorted(spans, key=lambda s: s["start_ns"]):
        parent = span["parent_id"] if span["parent_id"] in ids else None
        children.setdefault(parent, []).append(span)
    origin = min((s["start_ns"] for s in spans), default=0)

    def label(span: dict[str, Any]) -> str:
        took = (span["end_ns"] - span["start_ns"]) / 1e6
        at = (span["start_ns"] - origin) / 1e6
        error = " [red]error[/red]" if span.get("status") == 2 else ""
        return (
            f"{span['name']} [dim]{span['service']}[/dim]  {took:.1f} ms "
            f"[dim](+{at:.1f} ms)[/dim]{error}"
        )

    def grow(node: Tree, span: dict[str, Any]) -> None:
        for child in children.get(span["span_id"], []):
            grow(node.add(label(child)), child)

    roots = []
    for root in children.get(None, []):
        tree = Tree(label(root))
        grow(tree, root)
        roots.append(tree)
    return roots


def spans_within(run_id: str, wait_s: float) -> list[dict[str, Any]]:
    """The run's spans; apps and sidecars export in batches (every few seconds), so a run
    that just ended may have none stored yet: poll up to ``wait_s`` for the first ones, then
    a moment more while the other services' arrive."""
    deadline = time.monotonic() + wait_s
    spans = spans_of(run_id)
    if spans or wait_s <= 0:
        return spans
    typer.echo(f"waiting up to {wait_s:.0f}s for the run's spans…", err=True)
    while not spans and time.monotonic() < deadline:
        time.sleep(0.5)
        spans = spans_of(run_id)
    settle = time.monotonic() + SETTLE_S
    while spans and time.monotonic() < settle:
        time.sleep(0.5)
        spans = spans_of(run_id)
    return spans


def trace(
    run_id: Annotated[str, typer.Argument(help="The run's id")],
    as_json: Annotated[bool, typer.Option("--json", help="The spans as JSON")] = False,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for the spans of a run that has just ended", min=0),
    ] = 15.0,
) -> None:
    """Print a run's spans as a tree (gateway → broker → agent-runner → tools → memory)."""
    try:
        spans = spans_within(run_id, wait)
    except httpx.HTTPError as exc:
        typer.echo(
            f"error: the trace store at {store_url()} did not answer ({type(exc).__name__}); "
            "is the mesh up?",
            err=True,
        )
        raise typer.Exit(1) from None
    if not spans:
        typer.echo(f"error: no spans for run '{run_id}' (spans are kept 24 h)", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(spans, indent=1))
        return
    traces = {s["trace_id"] for s in spans}
    services = sorted({s["service"] for s in spans})
    typer.echo(
        f"run {run_id}: {len(spans)} spans in {len(traces)} trace(s), from {', '.join(services)}",
        err=True,
    )
    for tree in build_tree(spans):
        console.print(tree)
