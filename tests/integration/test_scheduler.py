"""Schedules through the real mesh: the scheduler service keeps their timing in Dapr's Jobs
API (the dapr-scheduler control-plane process), so they fire on time, keep firing after the
scheduler service and its sidecar restart, and start each tick's run exactly once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentia import names
from agentia_tools.runtime import mesh
from agentia_workflows.contracts import AGENT_LOOP

from .conftest import Infra, Sidecar, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def ops(mesh_sidecar: Callable[[str], Sidecar], mesh_service: Callable[[str], None]) -> Sidecar:
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.SCHEDULER):
        mesh_service(app_id)
    return mesh_sidecar(names.GATEWAY)


def schedule(app: Sidecar, schedule_id: str) -> dict[str, Any]:
    resp = app.invoke(names.SCHEDULER, "GET", f"internal/schedules/{schedule_id}")
    return dict(resp.json()) if resp.status_code == 200 else {}


def run_done(app: Sidecar, run_id: str) -> bool:
    resp = app.invoke(names.AGENT_RUNNER, "GET", f"internal/runs/{run_id}")
    return resp.status_code == 200 and resp.json().get("status") == "success"


def test_cron_fires_on_time_and_survives_a_scheduler_restart(ops: Sidecar, infra: Infra) -> None:
    sid = f"cron-{uuid.uuid4().hex[:8]}"
    body = {
        "schedule_id": sid,
        "cron": "*/3 * * * * *",  # every 3 s (six fields: seconds first)
        "target": {"agent_id": "assistant", "input": "scheduled hello"},
    }
    created = ops.invoke(names.SCHEDULER, "POST", "internal/schedules", body)
    assert created.status_code == 201, created.text
    assert created.json()["next_run"]
    wait_for(lambda: schedule(ops, sid).get("fires", 0) >= 2, 30, "two fires")
    first = schedule(ops, sid)
    run_id = first["last_run_id"]
    # The run id is the tick: sched-<id>-<UTC time>, on a multiple of 3 s.
    tick = datetime.strptime(run_id.rsplit("-", 1)[1], "%Y%m%dT%H%M%SZ")
    assert tick.second % 3 == 0
    wait_for(lambda: run_done(ops, run_id), 30, "the scheduled run")

    for name in (mesh.sidecar_name(names.SCHEDULER), names.SCHEDULER):
        infra.supervisor.stop(name)
    time.sleep(4)  # ticks pass while no Agentia scheduler process runs
    for name in (names.SCHEDULER, mesh.sidecar_name(names.SCHEDULER)):
        infra.supervisor.start(name, wait=False)
    before = schedule(ops, sid).get("fires", 0) if schedule(ops, sid) else first["fires"]
    wait_for(lambda: schedule(ops, sid).get("fires", 0) >= before + 2, 60, "fires after restart")
    assert (
        run_done(ops, schedule(ops, sid)["last_run_id"])
        or wait_for(
            lambda: run_done(ops, schedule(ops, sid)["last_run_id"]), 30, "run after restart"
        )
        is None
    )

    deleted = ops.invoke(names.SCHEDULER, "DELETE", f"internal/schedules/{sid}")
    assert deleted.status_code == 200, deleted.text
    assert ops.invoke(names.SCHEDULER, "GET", f"internal/schedules/{sid}").status_code == 404


def test_one_shot_starts_a_workflow_once(ops: Sidecar) -> None:
    sid = f"once-{uuid.uuid4().hex[:8]}"
    at = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    body = {
        "schedule_id": sid,
        "at": at,
        "target": {
            "kind": "workflow",
            "workflow": AGENT_LOOP,
            "input": {"agent_id": "assistant", "messages": ['calculator {"expression": "2+3"}']},
        },
    }
    created = ops.invoke(names.SCHEDULER, "POST", "internal/schedules", body)
    assert created.status_code == 201, created.text
    wait_for(lambda: schedule(ops, sid).get("fires", 0) == 1, 30, "the one fire")
    instance = schedule(ops, sid)["last_run_id"]

    def completed() -> bool:
        resp = ops.invoke(names.AGENT_RUNNER, "GET", f"internal/workflows/{instance}")
        return resp.status_code == 200 and resp.json()["status"] == "COMPLETED"

    wait_for(completed, 60, "the scheduled workflow")
    time.sleep(3)
    assert schedule(ops, sid)["fires"] == 1, "a one-shot fires once"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "*/5 * * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"cron": "*/5 * * * *", "interval_s": 10}, "exactly one of"),
        ({"at": "2001-01-01T00:00:00Z"}, "at"),
        ({"interval_s": 0.5}, "interval_s"),
        # What would fail at every fire is refused when the schedule is made.
        ({"cron": "0 * * * *", "target": {"agent_id": "nobody", "input": "x"}}, "no agent"),
        ({"cron": "0 * * * *", "target": {"agent_id": "assistant"}}, "target"),
        (
            {"cron": "0 * * * *", "target": {"kind": "workflow", "workflow": "Nope", "input": {}}},
            "unknown workflow",
        ),
        (
            {
                "cron": "0 * * * *",
                "target": {"kind": "workflow", "workflow": "AgentLoop", "input": {}},
            },
            "input.",
        ),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(
    ops: Sidecar, change: dict[str, Any], field: str
) -> None:
    body = {"target": {"agent_id": "assistant", "input": "x"}, **change}
    resp = ops.invoke(names.SCHEDULER, "POST", "internal/schedules", body)
    assert resp.status_code == 422, resp.text
    assert field in resp.text
