"""A process the mesh supervisor runs: the common shape every runtime module returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ProgramSpec:
    """One supervised process: a service, a sidecar, a control-plane or infrastructure server.

    ``group`` orders start-up (infra, control-plane, app, sidecar) and lets the CLI and the
    chaos suite address a whole layer. ``user`` is the Unix user to run as (PostgreSQL
    refuses to run as root), None for the current user.
    """

    name: str
    command: list[str]
    group: str
    directory: Path | None = None
    environment: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    stopsignal: str = "TERM"
    stopwaitsecs: int = 15
    priority: int = 500
