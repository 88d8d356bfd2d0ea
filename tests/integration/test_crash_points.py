"""A service SIGKILLed at a named point of a run's life (agentia.faults), against the real
mesh: the run still ends ``success`` with the right answer, the thread holds one input and
one answer, usage is counted once, the thread takes the next run, and a client replaying
the run's events sees each position once, from 0, with no gap.

Each point is armed for one thread on the service's own port (its app token), so other
tests' runs never hit it; it fires once (the arming dies with the process)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from agentia import faults, names
from agentia_tools.runtime import local_keys

from .conftest import Infra, Sidecar, wait_for

pytestmark = pytest.mark.integration
GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
QUESTION = 'calculator {"expression": "6*7"}'
ANSWER = "42"
FINAL_WITHIN_S = 150  # restart, redelivery backoff, and the reconciler's first look (~40 s)


@pytest.fixture(scope="module")
def api(infra: Infra, mesh_service: Callable[[str], None]) -> Iterator[httpx.Client]:
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.GATEWAY):
        mesh_service(app_id)
    # A key of its own: its usage is this module's runs only.
    key, _ = local_keys.create_key(infra.home, f"crash-{uuid.uuid4().hex[:6]}", "write")
    assert local_keys.reload_gateway_secrets(infra.home)
    with httpx.Client(base_url=GATEWAY, headers={"x-api-key": key}, timeout=60) as client:
        wait_for(lambda: client.post("/threads/search", json={}).status_code == 200, 60, "key")
        yield client


def arm(infra: Infra, app_id: str, point: str, key: str) -> None:
    """Arm ``point`` in ``app_id`` for runs of thread (or run) ``key``."""
    url = f"http://127.0.0.1:{names.PORTS[app_id].app}/internal/faults"
    resp = httpx.post(
        url,
        json={"point": point, "key": key},
        headers={"dapr-api-token": infra.tokens.app_api_token},
        timeout=10,
    )
    assert resp.status_code == 200, f"{app_id} serves no crash points: {resp.status_code}"


def runs_counted(api: httpx.Client) -> int:
    days = api.get("/usage", params={"days": 2}).json()["days"]
    return sum(int(d["runs"]) for d in days)


def thread_of(api: httpx.Client) -> str:
    resp = api.post("/threads", json={"metadata": {"test": "crash-points"}})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["thread_id"])


def final_run(api: httpx.Client, thread_id: str, run_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def final() -> bool:
        resp = api.get(f"/threads/{thread_id}/runs/{run_id}")
        if resp.status_code == 200:
            found.update(resp.json())
        return found.get("status") in ("success", "error", "interrupted", "timeout")

    wait_for(final, FINAL_WITHIN_S, f"run {run_id} final")
    return found


def gateway_back(api: httpx.Client) -> None:
    wait_for(lambda: api.post("/threads/search", json={}).status_code == 200, 90, "gateway")


def replayed_seqs(api: httpx.Client, thread_id: str, run_id: str) -> list[tuple[int, str]]:
    """(seq, kind) of every event a client replaying the run's stream gets."""
    seen: list[tuple[int, str]] = []
    path = f"/threads/{thread_id}/runs/{run_id}/stream"
    with api.stream("GET", path, timeout=30) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if isinstance(event, dict) and "seq" in event:
                    seen.append((int(event["seq"]), str(event["kind"])))
    return seen


def check_outcome(api: httpx.Client, thread_id: str, run: dict[str, Any]) -> None:
    assert run["status"] == "success", run
    messages = api.get(f"/threads/{thread_id}/state").json()["values"]["messages"]
    users = [m for m in messages if m["role"] == "user"]
    answers = [m for m in messages if m["role"] == "assistant" and ANSWER in str(m["content"])]
    assert [m["content"] for m in users] == [QUESTION], messages
    assert len(answers) == 1, messages
    assert len(messages) == 4, messages  # the input, the tool call, its result, the answer
    seqs = replayed_seqs(api, thread_id, run["run_id"])
    assert [s for s, _ in seqs] == list(range(len(seqs))), seqs
    kinds = [k for _, k in seqs]
    assert kinds[0] == "run.started" and kinds.count("run.started") == 1, seqs
    assert kinds[-1] == "run.completed" and kinds.count("run.completed") == 1, seqs
    # The thread is free: the next run (reject strategy) is accepted and completes.
    nxt = api.post(f"/threads/{thread_id}/runs/wait", json={"input": "hello again"})
    assert nxt.status_code == 200, nxt.text
    assert nxt.json()["run"]["status"] == "success"


RUNNER_POINTS = [
    faults.RUNNER_AFTER_CLAIM,
    faults.RUNNER_AFTER_FIRST_EVENT,
    faults.RUNNER_AFTER_THREAD_APPEND,
    faults.RUNNER_IN_TOOL_CALL,
    faults.RUNNER_AFTER_FINAL_RECORD,
    faults.RUNNER_AFTER_FINAL_PUBLISH,
]


@pytest.mark.parametrize("point", RUNNER_POINTS)
def test_agent_runner_killed_at(point: str, api: httpx.Client, infra: Infra) -> None:
    thread_id = thread_of(api)
    before = runs_counted(api)
    arm(infra, names.AGENT_RUNNER, point, thread_id)
    body = {"input": QUESTION, "stream_mode": ["events"]}
    created = api.post(f"/threads/{thread_id}/runs", json=body)
    assert created.status_code == 200, created.text
    run = final_run(api, thread_id, created.json()["run_id"])
    check_outcome(api, thread_id, run)
    wait_for(lambda: runs_counted(api) == before + 2, 30, "usage of both runs")
    time.sleep(2)  # a double count would land within the same settling
    assert runs_counted(api) == before + 2


@pytest.mark.parametrize("point", [faults.GATEWAY_AFTER_RECORD, faults.GATEWAY_AFTER_PUBLISH])
def test_gateway_killed_at(point: str, api: httpx.Client, infra: Infra) -> None:
    thread_id = thread_of(api)
    arm(infra, names.GATEWAY, point, thread_id)
    body = {"input": QUESTION, "stream_mode": ["events"]}
    with pytest.raises(httpx.TransportError):
        api.post(f"/threads/{thread_id}/runs", json=body)  # the gateway dies before answering
    gateway_back(api)
    runs: list[dict[str, Any]] = []

    def listed() -> bool:
        runs[:] = api.get(f"/threads/{thread_id}/runs").json()
        return len(runs) == 1

    wait_for(listed, 30, "the run the client never heard of")
    check_outcome(api, thread_id, final_run(api, thread_id, runs[0]["run_id"]))


def test_memory_killed_while_distilling(
    api: httpx.Client, infra: Infra, mesh_sidecar: Callable[[str], Sidecar]
) -> None:
    thread_id = thread_of(api)
    arm(infra, names.MEMORY, faults.MEMORY_IN_DISTILLATION, thread_id)
    # In the background: memory may be down (killed) while a create-and-wait would answer.
    created = api.post(f"/threads/{thread_id}/runs", json={"input": "my name is Ada"})
    assert created.status_code == 200, created.text
    run_id = created.json()["run_id"]
    assert final_run(api, thread_id, run_id)["status"] == "success"
    gateway = mesh_sidecar(names.GATEWAY)
    path = f"internal/memories/extractions/{run_id}"
    found: dict[str, Any] = {}

    def distilled() -> bool:
        resp = gateway.invoke(names.MEMORY, "GET", path, timeout=10)
        if resp.status_code == 200:
            found.update(resp.json())
        return bool(found)

    wait_for(distilled, FINAL_WITHIN_S, "the run's memories after memory's restart")
    keys = found["memory_keys"]
    assert keys and len(keys) == len(set(keys)), found
    messages = api.get(f"/threads/{thread_id}/state").json()["values"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"], messages


def test_runs_are_accepted_while_agent_runner_is_stopped(api: httpx.Client, infra: Infra) -> None:
    """The gateway answers from its copy of the agent catalog: creating a run needs no
    agent-runner; the run completes once agent-runner is back. An unknown agent is still
    refused at the door."""
    thread_id = thread_of(api)
    infra.supervisor.stop(names.AGENT_RUNNER)
    try:
        created = api.post(f"/threads/{thread_id}/runs", json={"input": QUESTION})
        assert created.status_code == 200, created.text
        unknown = api.post(f"/threads/{thread_id}/runs", json={"input": "x", "agent_id": "nobody"})
        assert unknown.status_code == 404, unknown.text
        assert api.post("/agents/search", json={}).status_code == 200
        run = api.get(f"/threads/{thread_id}/runs/{created.json()['run_id']}").json()
        assert run["status"] == "pending"  # on the broker: nothing can run it meanwhile
    finally:
        infra.supervisor.start(names.AGENT_RUNNER, wait=False)
    run = final_run(api, thread_id, created.json()["run_id"])
    assert run["status"] == "success", run
