"""A fake wall clock for one Python service of the local mesh (for clock-fault chaos).

While ``$AGENTIA_HOME/run/clock/<app id>`` exists, the service runs under libfaketime (the
``libfaketime`` package's bundled library, preloaded): its wall clock is the real one moved
by the offset the file holds (``+300``: five minutes ahead, ``-120``, ``+0``), re-read every
second, so an experiment can skew and jump the clock of a running process. Its monotonic
clock is left alone, as an NTP step leaves it. Go processes (the sidecars, the control
plane) do not read the clock through libc and are not affected.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


class ClockError(RuntimeError):
    """The fake clock cannot be set up (libfaketime missing)."""


def clock_file(home: Path, app_id: str) -> Path:
    return home / "run" / "clock" / app_id


def faketime_library() -> Path:
    """The bundled libfaketime (the ``libfaketime`` package of the ``tools`` extra)."""
    spec = importlib.util.find_spec("libfaketime")
    if spec is None or not spec.submodule_search_locations:
        raise ClockError("libfaketime is not installed: `make venv` installs it (tools extra)")
    root = Path(next(iter(spec.submodule_search_locations)))
    library = root / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    if not library.exists():
        raise ClockError(f"libfaketime's library is missing: {library}")
    return library


def clock_environment(home: Path, app_id: str) -> dict[str, str]:
    """The environment that puts ``app_id`` under its fake clock, or {} when it has none."""
    path = clock_file(home, app_id)
    if not path.exists():
        return {}
    return {
        "LD_PRELOAD": str(faketime_library()),
        "FAKETIME_TIMESTAMP_FILE": str(path),
        "FAKETIME_CACHE_DURATION": "1",
        "DONT_FAKE_MONOTONIC": "1",
    }
