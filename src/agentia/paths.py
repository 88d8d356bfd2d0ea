"""Where the project lives and where it keeps its runtime state."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout this package was installed from (editable install)."""
    return Path(__file__).resolve().parents[2]


def agentia_home() -> Path:
    """Runtime state (data, logs, generated config): ``$AGENTIA_HOME`` or ``<repo>/.agentia``."""
    env = os.environ.get("AGENTIA_HOME")
    return Path(env).resolve() if env else repo_root() / ".agentia"


def cache_home() -> Path:
    """Per-user cache shared by every clone (built Dapr binaries live here)."""
    env = os.environ.get("XDG_CACHE_HOME")
    base = Path(env) if env else Path.home() / ".cache"
    return base / "agentia"
