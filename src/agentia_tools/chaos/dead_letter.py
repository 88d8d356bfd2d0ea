"""A dead-letter publish that fails (``"module": "agentia_tools.chaos.dead_letter"``).

A RabbitMQ policy makes the dead-letter queues refuse every message (``max-length`` 0,
``overflow: reject-publish``): with publisher confirms, the broker nacks each publish to
them, so the sidecar's dead-letter publish fails. Dapr 1.18.0 then nacks the original
message back to its queue (read in its subscription code), and it is retried and comes
back, until the dead-letter queue takes it again. Poison run requests published while the
policy holds must all end dead-lettered and failed once it is lifted: none may be acked
and dropped on the way.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Final

from agentia import names
from agentia.paths import agentia_home
from agentia_tools.chaos import actions
from agentia_tools.chaos import load as load_mod
from agentia_tools.chaos.disk import rabbitmq_tool

POLICY: Final = "agentia-chaos-reject-dead-letters"
PATTERN: Final = r"\.dlq$"  # every dead-letter queue (Dapr names them <app>-<topic>.dlq)
MAX_HOLD_S: Final = 300.0
FAILED_PUBLISH: Final = "error sending message to dead letter"


def _sidecar_log() -> Path:
    return agentia_home() / "logs" / f"{names.AGENT_RUNNER}-dapr.log"


def _log_size() -> int:
    path = _sidecar_log()
    return path.stat().st_size if path.exists() else 0


def _failed_publishes(since: int) -> int:
    """Failed dead-letter publishes agent-runner's sidecar logged after offset ``since``."""
    path = _sidecar_log()
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        fh.seek(min(since, path.stat().st_size))
        return fh.read().decode(errors="replace").count(FAILED_PUBLISH)


def reject_dead_letters() -> None:
    definition = json.dumps({"max-length": 0, "overflow": "reject-publish"})
    rabbitmq_tool(
        "rabbitmqctl", "set_policy", POLICY, PATTERN, definition, "--apply-to", "queues", "-q"
    )


def accept_dead_letters() -> str:
    """Rollback: the policy gone (no error when it already is)."""
    rabbitmq_tool("rabbitmqctl", "clear_policy", POLICY, "-q", check=False)
    return "dead-letter queues accept messages again"


def poison_while_dead_letters_fail(count: int = 3, seconds: float = 30) -> str:
    """Make every dead-letter publish fail, publish ``count`` poison run requests, hold
    ``seconds``, then let dead letters through again. Fails unless the sidecar logged at
    least one failed dead-letter publish (the fault really happened)."""
    load = load_mod.CURRENT.get("load")
    offset = _log_size()
    reject_dead_letters()
    if load is not None:
        load.fault_at = time.monotonic()
    try:
        said = actions.publish_poison(count)
        deadline = time.monotonic() + min(seconds, MAX_HOLD_S)
        while time.monotonic() < deadline:
            time.sleep(1)
        failed = _failed_publishes(offset)
    finally:
        accept_dead_letters()
        actions.FAULTS["ended"] = time.time()
    if failed == 0:
        raise RuntimeError(f"no dead-letter publish failed in {seconds:g}s: the fault never hit")
    return (
        f"{said} while the dead-letter queues refused every message for {seconds:g}s; "
        f"the sidecar's dead-letter publish failed {failed} times (each message nacked back)"
    )
