"""A dead-letter publish that fails (``"module": "agentia_tools.chaos.dead_letter"``).

agent-runner's sidecar is restarted with a copy of the resources whose pub/sub component
no longer lets agent-runner publish to ``runs.requested.dlq`` (its publishing scope
narrowed; runtime/mesh.py's resources override), before the load starts. Poison run
requests (failing on every delivery) are then published: when Dapr gives up on one, its
dead-letter publish is refused. Dapr 1.18.0 then nacks the message back to its queue (read
in its subscription code) rather than acknowledging it, so it comes back and is retried.
After the hold the sidecar is restarted with the real resources; every poison request
must then end dead-lettered and failed, none acked and dropped on the way.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Final

import yaml

from agentia import names
from agentia.paths import agentia_home
from agentia_tools.chaos import actions
from agentia_tools.chaos import load as load_mod
from agentia_tools.runtime import mesh

APP: Final = names.AGENT_RUNNER
DEAD_LETTER_TOPIC: Final = names.dead_letter(names.TOPIC_RUNS_REQUESTED)
MAX_HOLD_S: Final = 300.0
FAILED_PUBLISH: Final = "error sending message to dead letter"


def _sidecar_log() -> Path:
    return agentia_home() / "logs" / f"{mesh.sidecar_name(APP)}.log"


def narrowed_scopes(scopes: str, app_id: str, topic: str) -> str:
    """``publishingScopes`` (``app=t1,t2;app2=…``) with ``topic`` taken from ``app_id``'s."""
    out = []
    for entry in scopes.split(";"):
        app, _, topics = entry.partition("=")
        if app.strip() == app_id:
            topics = ",".join(t for t in topics.split(",") if t.strip() != topic)
        out.append(f"{app}={topics}")
    return ";".join(out)


def _write_override(target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(mesh.components_dir(), target)
    path = target / "pubsub.yaml"
    doc = yaml.safe_load(path.read_text())
    for item in doc["spec"]["metadata"]:
        if item["name"] == "publishingScopes":
            item["value"] = narrowed_scopes(item["value"], APP, DEAD_LETTER_TOPIC)
            break
    else:
        raise RuntimeError(f"{path} has no publishingScopes")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def refuse_dead_letters() -> str:
    """Restart agent-runner's sidecar unable to publish its dead letters."""
    target = mesh.resources_override(agentia_home(), APP)
    _write_override(target)
    pid = actions.restart_with_plan(mesh.sidecar_name(APP))
    return f"{mesh.sidecar_name(APP)} ({pid}) may not publish to {DEAD_LETTER_TOPIC}"


def accept_dead_letters() -> str:
    """Rollback: the sidecar back on the real resources (restarted only if it was not)."""
    target = mesh.resources_override(agentia_home(), APP)
    if not target.exists():
        return "dead letters were accepted"
    shutil.rmtree(target)
    actions.restart_with_plan(mesh.sidecar_name(APP))
    return f"{mesh.sidecar_name(APP)} back on the real resources"


def _log_size() -> int:
    path = _sidecar_log()
    return path.stat().st_size if path.exists() else 0


def _failed_publishes(since: int) -> int:
    path = _sidecar_log()
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        fh.seek(min(since, path.stat().st_size))
        return fh.read().decode(errors="replace").count(FAILED_PUBLISH)


def poison_while_dead_letters_fail(count: int = 3, seconds: float = 30) -> str:
    """Publish ``count`` poison run requests while dead letters are refused, hold
    ``seconds``, then let them through. Fails unless the sidecar logged a refused
    dead-letter publish (the fault really hit)."""
    load = load_mod.CURRENT.get("load")
    offset = _log_size()
    if load is not None:
        load.fault_at = time.monotonic()
    said = actions.publish_poison(count)
    time.sleep(min(seconds, MAX_HOLD_S))
    failed = _failed_publishes(offset)
    accept_dead_letters()
    actions.FAULTS["ended"] = time.time()
    if failed == 0:
        raise RuntimeError(f"no dead-letter publish failed in {seconds:g}s: the fault never hit")
    return (
        f"{said}; {failed} dead-letter publishes refused in {seconds:g}s (each message "
        "nacked back and retried); the sidecar then restarted on the real resources"
    )
