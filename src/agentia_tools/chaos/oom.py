"""Out of memory (``"module": "agentia_tools.chaos.oom"``): a service's process is given a
memory cgroup whose limit is just above what it uses, and serves on until the kernel's OOM
killer ends it mid-work; supervisord restarts it (outside the group), and the next round
does it again.

The memory controller is cgroup v1's (``/sys/fs/cgroup/memory``, a hybrid mount as here) or
v2's (``memory.max``). The OOM kill is the kernel's own, counted from the group's
``oom_kill`` figure, not a signal we send.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import httpx

from agentia import names
from agentia.contracts import memory_threads
from agentia.contracts import workflows as workflows_api
from agentia.paths import agentia_home
from agentia_tools.chaos import actions, injected, probes
from agentia_tools.chaos import load as load_mod
from agentia_tools.chaos.partition import cgroup_root
from agentia_tools.runtime.secrets_file import read_secrets
from agentia_tools.runtime.supervisor import Supervisor

V1: Final = Path("/sys/fs/cgroup/memory")
BALLAST_MIB: Final = 3
# A request each service reads whole and checks without keeping anything (a 422 at most):
# a service at rest allocates nothing new, so the experiment hands it work that does.
BALLAST: Final[dict[str, tuple[str, Callable[[str], dict[str, Any]]]]] = {
    names.AGENT_RUNNER: (
        workflows_api.CHECK,
        lambda big: {"workflow": "AgentLoop", "input": {"agent_id": "ballast", "messages": [big]}},
    ),
    names.MEMORY: (memory_threads.THREADS_SEARCH, lambda big: {"metadata": {"ballast": big}}),
}
GROUP: Final = "agentia-chaos-oom"
MAX_ROUNDS: Final = 10


class OomError(RuntimeError):
    """The memory limit could not be set, or the process never ran out of memory."""


def _group(app_id: str) -> tuple[Path, str, str, str]:
    """The group's folder and its limit, usage and events files (v1 or v2)."""
    if (V1 / "cgroup.procs").exists():
        return (
            V1 / GROUP / app_id,
            "memory.limit_in_bytes",
            "memory.usage_in_bytes",
            "memory.oom_control",
        )
    root = cgroup_root()
    if "memory" not in (root / "cgroup.subtree_control").read_text().split():
        (root / "cgroup.subtree_control").write_text("+memory")
    return root / GROUP / app_id, "memory.max", "memory.current", "memory.events"


def _oom_kills(path: Path) -> int:
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def _pid(app_id: str) -> int:
    for proc in Supervisor(agentia_home()).processes():
        if proc.name == app_id and proc.state == "RUNNING" and proc.pid:
            return proc.pid
    raise OomError(f"{app_id} is not running")


def _ballast(app_id: str) -> None:
    """One heavy request straight to the service (its own port, its app token)."""
    path, body = BALLAST[app_id]
    token = read_secrets(agentia_home())[names.SECRET_APP_API_TOKEN]
    with contextlib.suppress(httpx.HTTPError):  # the OOM killer may end it mid-answer
        httpx.post(
            f"http://127.0.0.1:{names.PORTS[app_id].app}/{path}",
            json=body("x" * BALLAST_MIB * 1024 * 1024),
            headers={"dapr-api-token": token},
            timeout=30,
        )


def starve_once(app_id: str, margin_mib: int, timeout_s: float) -> float:
    """Put ``app_id`` in a group ``margin_mib`` above its usage and hand it heavy requests
    until the kernel's OOM killer ends it; the seconds that took."""
    if app_id not in BALLAST:
        raise OomError(f"app_id must be one of {', '.join(BALLAST)}, not {app_id!r}")
    stop = threading.Event()

    def feed() -> None:
        while not stop.wait(2.0):
            _ballast(app_id)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        return starve(app_id, _pid(app_id), margin_mib, timeout_s)
    finally:
        stop.set()


def starve(name: str, pid: int, margin_mib: int, timeout_s: float) -> float:
    """:func:`starve_once` for any process (its group is named ``name``)."""
    folder, limit, usage, events = _group(name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / limit).write_text("max" if limit == "memory.max" else "-1")  # a fresh start
    (folder / "cgroup.procs").write_text(str(pid))
    before = _oom_kills(folder / events)
    time.sleep(0.5)  # what the group holds once the process is in it (v1: new pages only)
    cap = int((folder / usage).read_text()) + margin_mib * 1024 * 1024
    (folder / limit).write_text(str(cap))
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if _oom_kills(folder / events) > before:
            took = time.monotonic() - started
            with contextlib.suppress(OSError):  # empty once the killed process is reaped
                folder.rmdir()
            return took
        time.sleep(0.2)
    (folder / limit).write_text("max" if limit == "memory.max" else "-1")
    with contextlib.suppress(OSError):  # back where it came from: the hierarchy's root
        (folder.parent.parent / "cgroup.procs").write_text(str(pid))
        folder.rmdir()
    raise OomError(f"{name} did not run out of {margin_mib} MiB of headroom in {timeout_s:g}s")


def out_of_memory(app_id: str, rounds: int = 3, margin_mib: int = 2, timeout_s: float = 60) -> str:
    """``rounds`` times: starve ``app_id`` until the OOM killer ends it, then wait for the
    mesh to be healthy again (supervisord restarts it)."""
    load = load_mod.CURRENT.get("load")
    if load is not None:
        load.fault_at = time.monotonic()
    took: list[str] = []
    for _ in range(min(rounds, MAX_ROUNDS)):
        took.append(f"{starve_once(app_id, margin_mib, timeout_s):.1f}s")
        injected.fault()
        actions.FAULTS["ended"] = time.time()  # for the API load's "final within" check
        if not probes.mesh_healthy(timeout=120):
            raise OomError(f"the mesh is not healthy 120 s after {app_id} was OOM-killed")
    return f"{app_id} OOM-killed {len(took)} times (after {', '.join(took)} with {margin_mib} MiB)"
