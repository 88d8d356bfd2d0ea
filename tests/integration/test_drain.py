"""Pull-based consumption through the real mesh: run requests published on ``runs.batch``
wait in their durable queue (nobody is pushed them) until a drain takes a bounded batch
and starts each as an ordinary run, through the scheduler's streaming subscription."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from agentia import names
from agentia_tools.runtime import mesh
from agentia_tools.runtime.secrets_file import read_secrets
from agentia_tools.runtime.watchdog import (
    Memory,
    check_drains,
    queue_states,
    running_since,
    unacked_counts,
)

from .conftest import Infra, Sidecar, wait_for

pytestmark = pytest.mark.integration
QUEUE = names.drain_queue(names.TOPIC_RUNS_BATCH)


@pytest.fixture
def ops(mesh_sidecar: Callable[[str], Sidecar], mesh_service: Callable[[str], None]) -> Sidecar:
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.SCHEDULER):
        mesh_service(app_id)
    return mesh_sidecar(names.GATEWAY)


def publish(app: Sidecar, body: Any) -> None:
    resp = httpx.post(
        f"{app.dapr}/v1.0/publish/{names.PUBSUB}/{names.TOPIC_RUNS_BATCH}",
        json=body,
        headers=app.headers(),
        timeout=10,
    )
    assert resp.status_code == 204, resp.text


def status(app: Sidecar, run_id: str) -> str | None:
    resp = app.invoke(names.AGENT_RUNNER, "GET", f"internal/runs/{run_id}")
    return str(resp.json().get("status")) if resp.status_code == 200 else None


def waiting(infra: Infra) -> int:
    url = read_secrets(infra.home)[names.SECRET_RABBITMQ_URL]
    state = queue_states(url, [QUEUE])
    assert QUEUE in state, "the drain queue was not declared"
    return state[QUEUE].ready


def drain(app: Sidecar, **body: Any) -> dict[str, Any]:
    resp = app.invoke(names.SCHEDULER, "POST", "internal/drains", {"idle_s": 1.0, **body})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def empty(app: Sidecar) -> None:
    """Leftovers of an earlier test run must not count here. A drain an earlier test's
    schedule fired may still be running: wait for it to end (409 until then)."""

    def drained() -> bool:
        resp = app.invoke(names.SCHEDULER, "POST", "internal/drains", {"idle_s": 1.0})
        assert resp.status_code in (200, 409), resp.text
        return resp.status_code == 200

    wait_for(drained, 120, "the queue emptied by a drain of our own")


def test_batch_runs_wait_for_a_drain_which_starts_them_batch_by_batch(
    ops: Sidecar, infra: Infra
) -> None:
    empty(ops)
    tag = uuid.uuid4().hex[:8]
    ids = [f"batch-{tag}-{i:02d}" for i in range(12)]
    for rid in ids:
        publish(ops, {"run_id": rid, "agent_id": "assistant", "input": f"hello {rid}"})
    publish(ops, {"run_id": f"batch-{tag}-bad", "input": "no agent named"})  # unreadable
    time.sleep(3)
    assert all(status(ops, rid) is None for rid in ids), "nothing is pushed from runs.batch"
    assert waiting(infra) == 13

    report = drain(ops, batch_size=5)
    assert (report["received"], report["started"], report["dead_lettered"]) == (13, 12, 1)
    assert report["batches"] == 3 and report["unfinished"] == 0, report
    assert report["stopped"] == "idle"
    # Each batch was waited for, so when the drain answers every run has finished.
    assert all(status(ops, rid) == "success" for rid in ids)
    assert waiting(infra) == 0
    assert unacked_counts(exact=True).get(QUEUE, 0) == 0, "nothing left held by the sidecar"
    assert drain(ops)["received"] == 0, "each event taken once"


def test_the_queue_holds_runs_while_the_scheduler_is_down(ops: Sidecar, infra: Infra) -> None:
    empty(ops)
    for name in (mesh.sidecar_name(names.SCHEDULER), names.SCHEDULER):
        infra.supervisor.stop(name)
    tag = uuid.uuid4().hex[:8]
    ids = [f"held-{tag}-{i}" for i in range(3)]
    for rid in ids:
        publish(ops, {"run_id": rid, "agent_id": "assistant", "input": "while down"})
    assert waiting(infra) == 3
    for name in (names.SCHEDULER, mesh.sidecar_name(names.SCHEDULER)):
        infra.supervisor.start(name, wait=False)
    wait_for(
        lambda: ops.invoke(names.SCHEDULER, "GET", "internal/info").status_code == 200,
        60,
        "the scheduler back",
    )
    report = drain(ops)
    assert report["started"] == 3, report
    wait_for(lambda: all(status(ops, r) == "success" for r in ids), 60, "the held runs")


def test_a_drain_schedule_starts_the_backlog_in_batches(ops: Sidecar, infra: Infra) -> None:
    empty(ops)
    tag = uuid.uuid4().hex[:8]
    ids = [f"sched-batch-{tag}-{i}" for i in range(6)]
    for rid in ids:
        publish(ops, {"run_id": rid, "agent_id": "assistant", "input": "scheduled batch"})
    sid = f"drain-{tag}"
    body = {
        "schedule_id": sid,
        "interval_s": 3,
        "target": {"kind": "drain", "batch_size": 4, "idle_s": 0.5},
    }
    created = ops.invoke(names.SCHEDULER, "POST", "internal/schedules", body)
    assert created.status_code == 201, created.text
    try:
        wait_for(lambda: all(status(ops, r) == "success" for r in ids), 90, "the drained runs")

        def view() -> dict[str, Any]:
            return dict(ops.invoke(names.SCHEDULER, "GET", f"internal/schedules/{sid}").json())

        # The fire is counted when its drain has waited for its last batch.
        wait_for(lambda: view().get("fires", 0) >= 1, 30, "the fire counted")
        assert view()["last_drain"]["topic"] == names.TOPIC_RUNS_BATCH
    finally:
        ops.invoke(names.SCHEDULER, "DELETE", f"internal/schedules/{sid}")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"topic": names.TOPIC_RUNS_REQUESTED}, "topic"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_timeout_s": 500}, "batch_timeout_s"),
        ({"idle_s": 0}, "idle_s"),
        ({"batch": 3}, "batch"),
    ],
)
def test_bad_drains_are_refused_naming_the_field(
    ops: Sidecar, body: dict[str, Any], field: str
) -> None:
    resp = ops.invoke(names.SCHEDULER, "POST", "internal/drains", body)
    assert resp.status_code == 422, resp.text
    assert field in resp.text


def test_a_drain_cut_short_leaves_nothing_held_for_good(ops: Sidecar, infra: Infra) -> None:
    """Stopped by its time limit, a drain may leave events its sidecar holds unacknowledged
    (Dapr 1.18 sometimes hands a closed stream's prefetch back, sometimes keeps it); when it
    holds some, the watchdog's check restarts that sidecar and the broker has them back."""
    empty(ops)
    sidecar = mesh.sidecar_name(names.SCHEDULER)
    started_at = running_since(infra.supervisor).get(sidecar)
    tag = uuid.uuid4().hex[:8]
    ids = [f"cut-{tag}-{i:02d}" for i in range(30)]
    for rid in ids:
        publish(ops, {"run_id": rid, "agent_id": "assistant", "input": "slow batch"})
    report = drain(ops, batch_size=1, max_seconds=1)
    assert report["stopped"] == "time limit" and report["started"] < 30, report
    left = 30 - report["started"]

    # Three states end the wait: events held by the sidecar; the mesh's own watchdog (when
    # `agentia up` started one) already restarted the sidecar, before rabbitmqctl (slow on a
    # loaded machine) showed them held; or the sidecar held none, every event back in the
    # queue.
    seen: dict[str, int] = {}

    def settled() -> bool:
        if running_since(infra.supervisor).get(sidecar) != started_at:
            seen["restarted"] = 1
            return True
        seen["held"] = unacked_counts(exact=True).get(QUEUE, -1)
        seen["ready"] = waiting(infra)
        return seen["held"] > 0 or (seen["held"] == 0 and seen["ready"] == left)

    wait_for(settled, 60, "events held by the sidecar, or all back in the queue")
    url = read_secrets(infra.home)[names.SECRET_RABBITMQ_URL]
    restarted = check_drains(infra.supervisor, url, infra.tokens.app_api_token, Memory())
    watchdog = {p.name: p.state for p in infra.supervisor.processes()}.get("watchdog")
    if seen.get("held", 0) > 0:
        assert restarted == [sidecar] or watchdog == "RUNNING", (seen, restarted)
    elif "restarted" not in seen:
        assert restarted == [], f"nothing was held, yet the sidecar was restarted: {seen}"
    wait_for(lambda: unacked_counts(exact=True).get(QUEUE, 0) == 0, 30, "the held events back")
    wait_for(
        lambda: ops.invoke(names.SCHEDULER, "GET", "internal/info").status_code == 200,
        60,
        "the scheduler's sidecar back",
    )
    rest = drain(ops, batch_size=10)
    assert report["started"] + rest["started"] == 30, (report, rest)
    wait_for(lambda: all(status(ops, r) == "success" for r in ids), 60, "all 30 runs")
