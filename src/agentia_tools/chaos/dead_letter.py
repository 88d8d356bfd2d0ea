"""A dead-letter publish that fails (``"module": "agentia_tools.chaos.dead_letter"``).

agent-runner's sidecar is restarted with a copy of the resources whose pub/sub component
no longer lets agent-runner publish to ``runs.requested.dlq`` (its publishing scope
narrowed; runtime/mesh.py's resources override), before the load starts. Then three
poison run requests (failing on every delivery) and one request in a CloudEvent that has
already expired are published, and held 30 s:

- the poison requests never need Dapr's dead-letter publish: agent-runner dead-letters them
  itself at its retry budget (keeps the request, fails the run), so they must end failed
  whatever the broker's dead-letter path does;
- the expired one is dropped unread by the sidecar, which then tries its dead-letter copy:
  that publish is refused (the fault hits, and the sidecar logs it). Dapr 1.18.0
  acknowledges a dropped event whose copy fails, so it is gone: reported, not gated on
  (an upstream limit; a run created through the gateway is re-published by the gateway's
  reconciler, so only events published around the gateway are affected).

After the hold the sidecar is restarted with the real resources.
"""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import yaml

from agentia import names
from agentia.paths import agentia_home
from agentia_tools.chaos import actions, injected, poison, probes
from agentia_tools.chaos import load as load_mod
from agentia_tools.runtime import mesh

APP: Final = names.AGENT_RUNNER
DEAD_LETTER_TOPIC: Final = names.dead_letter(names.TOPIC_RUNS_REQUESTED)
MAX_HOLD_S: Final = 300.0
# Both ways the sidecar says a dead-letter copy failed: a delivery's, and a dropped event's.
FAILED_PUBLISH: Final = ("error sending message to dead letter", "failed to send dropped message")
EXPIRED: dict[str, str] = {}


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
        text = fh.read().decode(errors="replace")
    return sum(text.count(marker) for marker in FAILED_PUBLISH)


def poison_while_dead_letters_fail(count: int = 3, seconds: float = 30) -> str:
    """Publish ``count`` poison run requests and one expired request while dead letters
    are refused, hold ``seconds``, then let them through. Fails unless the sidecar logged a
    refused dead-letter publish (the fault really hit)."""
    load = load_mod.CURRENT.get("load")
    offset = _log_size()
    if load is not None:
        load.fault_at = time.monotonic()
    said = actions.publish_poison(count)
    expired = f"dlq-expired-{uuid.uuid4().hex[:8]}"
    gone = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    event = poison.cloud_event(expired, expiration=gone)
    poison.publish_event(event, "application/cloudevents+json")
    injected.fault()  # the expired one (publish_poison counted the others)
    time.sleep(min(seconds, MAX_HOLD_S))
    failed = _failed_publishes(offset)
    accept_dead_letters()
    actions.FAULTS["ended"] = time.time()
    EXPIRED["run_id"] = expired
    if failed == 0:
        raise RuntimeError(f"no dead-letter publish failed in {seconds:g}s: the fault never hit")
    return (
        f"{said} and an expired one ({expired}); {failed} dead-letter publishes refused in "
        f"{seconds:g}s; the sidecar then restarted on the real resources"
    )


def expired_request_fate(experiment: str, timeout: float = 30) -> dict[str, Any]:
    """What became of the expired request whose dead-letter copy was refused: its ledger
    record (``missing`` when nobody ever learnt of it). Reported, never failing."""
    run_id = EXPIRED.get("run_id", "")
    deadline = time.monotonic() + timeout
    status = "missing"
    while time.monotonic() < deadline:
        record = poison.ledger_record(run_id) if run_id else {}
        status = str(record.get("status") or "missing")
        if status != "missing":
            break
        time.sleep(1)
    result = {"expired_request": run_id, "expired_request_status": status, "ok": True}
    probes.record_report(experiment, result)
    return result
