"""`agentia console`: the web console (Streamlit) on http://127.0.0.1:8501, talking only to
the gateway's public API with the local API key (or ``AGENTIA_API_KEY``)."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Annotated

import httpx
import typer

from agentia.paths import agentia_home
from agentia_tools.cli.gateway_client import gateway_url
from agentia_tools.runtime.local_keys import local_key_path, read_local_key

PAGE_MODULE = "agentia_console.page"
DEFAULT_PORT = 8501


def streamlit_command(page: str, address: str, port: int) -> list[str]:
    """``streamlit run`` for the page: headless, no usage statistics, no file watcher, and
    no tracebacks in the browser (the page shows the gateway's reasons itself)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        page,
        f"--server.address={address}",
        f"--server.port={port}",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        "--global.developmentMode=false",
        "--client.toolbarMode=minimal",
        "--client.showErrorDetails=none",
    ]


def console(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on")] = DEFAULT_PORT,
    address: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
) -> None:
    """Start the web console: chat with agents, approve workflow steps, delete schedules,
    replay a run's events; it talks to the gateway only (AGENTIA_GATEWAY_URL, default
    http://127.0.0.1:8000) with AGENTIA_API_KEY or the local key `agentia up` made."""
    spec = importlib.util.find_spec(PAGE_MODULE)
    if spec is None or spec.origin is None or importlib.util.find_spec("streamlit") is None:
        typer.echo(
            "the console is not installed: pip install -e '.[console]' (scripts/bootstrap.sh "
            "does it)",
            err=True,
        )
        raise typer.Exit(1)
    home = agentia_home()
    key = os.environ.get("AGENTIA_API_KEY") or read_local_key(home)
    if not key:
        typer.echo(
            f"no API key: set AGENTIA_API_KEY or run `agentia up` first ({local_key_path(home)})",
            err=True,
        )
        raise typer.Exit(2)
    url = gateway_url()
    try:
        httpx.get(f"{url}/openapi.json", timeout=3)
    except httpx.HTTPError as exc:
        typer.echo(
            f"warning: gateway at {url} unreachable ({type(exc).__name__}); the console will "
            "say so until the mesh is up (`agentia up`)",
            err=True,
        )
    typer.echo(f"console: http://{address}:{port}  (gateway {url})", err=False)
    sys.stdout.flush()
    sys.stderr.flush()
    env = {**os.environ, "AGENTIA_GATEWAY_URL": url, "AGENTIA_API_KEY": key}
    cmd = streamlit_command(spec.origin, address, port)
    # Streamlit takes this process over, so signals (Ctrl-C, a test's terminate) reach it.
    os.execve(cmd[0], cmd, env)  # noqa: S606
