"""RabbitMQ's disk alarm (``"module": "agentia_tools.chaos.disk"``): what the broker does when
its disk runs short, without filling this machine's disk.

The broker raises its disk alarm when the free space on its data directory's filesystem
falls under ``disk_free_limit``; while it is up, every publishing connection is blocked (its
publishes wait, unconfirmed). Raising the limit far above the free space raises the very
same alarm; lowering it back clears it. The check that matters: no publish the broker
confirmed is lost, and publishes that were blocked are either confirmed later or reported
to the client as failed (and retried), never acknowledged and dropped.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Final

from agentia.paths import agentia_home
from agentia_tools.chaos import actions, injected
from agentia_tools.chaos import load as load_mod
from agentia_tools.runtime.infra import InfraSettings
from agentia_tools.runtime.infra_servers import RABBITMQ_BIN, rabbitmq_env, server_root

ALARM_LIMIT: Final = "1000000GB"  # far above any free space: the alarm goes up
DEFAULT_LIMIT: Final = "50MB"  # RabbitMQ's own default
MAX_HOLD_S: Final = 300.0


class DiskAlarmError(RuntimeError):
    """The broker could not be told, or its alarm did not go up or down."""


def _tool(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    settings = InfraSettings.from_env()
    env = {
        **os.environ,
        **rabbitmq_env(server_root(agentia_home()), settings.rabbitmq_port, settings.host),
    }
    proc = subprocess.run(
        [str(RABBITMQ_BIN / name), *args], env=env, capture_output=True, text=True, timeout=60
    )
    if check and proc.returncode != 0:
        raise DiskAlarmError(f"{name} {' '.join(args)}: {(proc.stderr or proc.stdout).strip()}")
    return proc


def alarm_up() -> bool:
    """Whether the broker has a local alarm (disk or memory) raised."""
    return _tool("rabbitmq-diagnostics", "check_local_alarms", "-q", check=False).returncode != 0


def _set_limit(limit: str, want_alarm: bool, timeout_s: float = 30) -> float:
    started = time.monotonic()
    _tool("rabbitmqctl", "set_disk_free_limit", limit, "-q")
    while time.monotonic() - started < timeout_s:
        if alarm_up() == want_alarm:
            return time.monotonic() - started
        time.sleep(0.5)
    state = "up" if want_alarm else "down"
    raise DiskAlarmError(f"the disk alarm did not go {state} within {timeout_s:g}s")


def disk_alarm(seconds: float = 20) -> str:
    """Raise the broker's disk alarm for ``seconds``, then clear it."""
    load = load_mod.CURRENT.get("load")
    if load is not None:
        load.fault_at = time.monotonic()
    raised = _set_limit(ALARM_LIMIT, want_alarm=True)
    injected.fault()
    try:
        time.sleep(min(seconds, MAX_HOLD_S))
    finally:
        cleared = _set_limit(DEFAULT_LIMIT, want_alarm=False)
        actions.FAULTS["ended"] = time.time()  # for the API load's "final within" check
    return (
        f"disk alarm up {raised:.1f}s after the limit rose, held {seconds:g}s, "
        f"down {cleared:.1f}s after it fell"
    )


def clear_alarm() -> str:
    """Rollback: the limit back to its default and the alarm down."""
    _set_limit(DEFAULT_LIMIT, want_alarm=False)
    return "disk alarm down"
