"""Clock faults (``"module": "agentia_tools.chaos.clock"``): one Python service's wall clock
skewed and jumping, forwards and back, while it serves (runtime/clock.py: libfaketime).

An experiment first restarts the service under a fake clock set to the real time
(:func:`fake_clock`, before its load starts, so the restart is not the fault under test),
then moves it (:func:`clock_jumps`); the rollback restarts it on the real clock.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from agentia import names
from agentia.paths import agentia_home
from agentia_tools.chaos import actions, injected
from agentia_tools.chaos import load as load_mod
from agentia_tools.runtime.clock import clock_file

MAX_JUMPS_S = 600.0  # a jump schedule never runs longer than this, whatever it is asked
SEEN_WITHIN_S = 20.0  # a jump counts as seen when the service's clock is this close to it


def clock_offset(app_id: str) -> float | None:
    """The service's wall clock less the real one, from the ``Date`` header its server
    writes (uvicorn stamps each answer with its own clock); None when it does not answer."""
    try:
        resp = httpx.get(f"http://127.0.0.1:{names.PORTS[app_id].app}/livez", timeout=5)
    except httpx.HTTPError:
        return None
    stamp = resp.headers.get("date")
    if not stamp:
        return None
    return parsedate_to_datetime(stamp).timestamp() - time.time()


def _seen(app_id: str, offset: int, timeout: float = 15) -> float | None:
    """Wait until the service's clock shows ``offset``; the offset it showed, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = clock_offset(app_id)
        if shown is not None and abs(shown - offset) <= SEEN_WITHIN_S:
            return shown
        time.sleep(0.5)
    return None


def _write(path: Path, offset_s: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{offset_s:+d}\n")
    tmp.replace(path)  # libfaketime never reads half a file


def fake_clock(app_id: str) -> str:
    """Restart ``app_id`` under a fake wall clock, at the real time for now."""
    home = agentia_home()
    path = clock_file(home, app_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, 0)
    pid = actions.restart_with_plan(app_id)
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    if not any(e.startswith(b"FAKETIME_TIMESTAMP_FILE=") for e in environ):
        raise RuntimeError(f"{app_id} ({pid}) did not start under the fake clock")
    return f"{app_id} ({pid}) runs under a fake clock ({path})"


def clock_jumps(app_id: str, offsets_s: list[int], hold_s: float = 15) -> str:
    """Move ``app_id``'s clock to each offset in turn (seconds from the real time), holding
    each ``hold_s``; back to the real time at the end, however it ends. The service's clock is
    read back after each move (its answers' ``Date``): a jump it never shows fails the action."""
    path = clock_file(agentia_home(), app_id)
    if not path.exists():
        raise RuntimeError(f"{app_id} is not under a fake clock: run fake_clock first")
    load = load_mod.CURRENT.get("load")
    if load is not None:
        load.fault_at = time.monotonic()
    hold_s = min(hold_s, MAX_JUMPS_S / max(len(offsets_s), 1))
    seen: list[str] = []
    try:
        for offset in offsets_s:
            moved = time.monotonic()
            _write(path, int(offset))
            injected.fault(1 if int(offset) else 0)  # back to the real time is no fault
            shown = _seen(app_id, int(offset))
            if shown is None:
                raise RuntimeError(f"{app_id}'s clock never showed {int(offset):+d}s")
            seen.append(f"{int(offset):+d}s (read {shown:+.0f}s)")
            time.sleep(max(0.0, moved + hold_s - time.monotonic()))
    finally:
        _write(path, 0)
        actions.FAULTS["ended"] = time.time()  # for the API load's "final within" check
    return f"{app_id}'s clock moved {', '.join(seen)}, {hold_s:g}s each"


def clock_skew(skews_s: dict[str, int], hold_s: float = 60) -> str:
    """Hold several services' clocks apart at once (``{"gateway": -7200, "agent-runner":
    7200}``: four hours between them) for ``hold_s``, then all back to the real time. Each
    skew is read back from its service before the hold starts."""
    home = agentia_home()
    paths = {app: clock_file(home, app) for app in skews_s}
    missing = [app for app, path in paths.items() if not path.exists()]
    if missing:
        raise RuntimeError(f"not under a fake clock: {missing} (run fake_clock first)")
    load = load_mod.CURRENT.get("load")
    if load is not None:
        load.fault_at = time.monotonic()
    seen: list[str] = []
    try:
        for app, offset in skews_s.items():
            _write(paths[app], int(offset))
            injected.fault()
        for app, offset in skews_s.items():
            shown = _seen(app, int(offset))
            if shown is None:
                raise RuntimeError(f"{app}'s clock never showed {int(offset):+d}s")
            seen.append(f"{app} {int(offset):+d}s (read {shown:+.0f}s)")
        time.sleep(min(hold_s, MAX_JUMPS_S))
    finally:
        for path in paths.values():
            _write(path, 0)
        actions.FAULTS["ended"] = time.time()
    return f"clocks held apart for {min(hold_s, MAX_JUMPS_S):g}s: {', '.join(seen)}"


def real_clock(app_id: str) -> str:
    """Rollback: ``app_id`` restarted on the real clock."""
    home = agentia_home()
    path = clock_file(home, app_id)
    if not path.exists():
        return f"{app_id} was on the real clock"
    path.unlink()
    actions.restart_with_plan(app_id)
    return f"{app_id} back on the real clock"
