"""How CLI commands reach the running mesh as a user would: the gateway's public API, with an
API key (``AGENTIA_API_KEY``, else the local key ``agentia up`` leaves in .agentia/api-key)."""

from __future__ import annotations

import os
from typing import Any

import httpx
import typer

from agentia import names
from agentia.paths import agentia_home
from agentia_tools.runtime.local_keys import read_local_key


def gateway_url() -> str:
    default = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
    return os.environ.get("AGENTIA_GATEWAY_URL", default).rstrip("/")


def call(method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
    """One call; a refusal or an unreachable gateway ends the command with the reason."""
    key = os.environ.get("AGENTIA_API_KEY") or read_local_key(agentia_home())
    if not key:
        typer.echo("no API key: set AGENTIA_API_KEY or run `agentia up` first", err=True)
        raise typer.Exit(2)
    try:
        resp = httpx.request(
            method,
            gateway_url() + path,
            json=body,
            headers={"x-api-key": key},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        typer.echo(
            f"gateway at {gateway_url()} unreachable ({type(exc).__name__}); is the mesh up?",
            err=True,
        )
        raise typer.Exit(1) from None
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text
        typer.echo(f"refused ({resp.status_code}): {detail}", err=True)
        raise typer.Exit(1)
    return resp.json() if resp.content else None
