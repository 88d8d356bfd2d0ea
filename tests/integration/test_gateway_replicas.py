"""Two gateway replicas (same Dapr app id, each with its own sidecar) serve one API: runs raced
on one thread from both keep ``multitask_strategy``'s promise, and a stream started on one
replica resumes on the other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentia import names
from agentia.paths import repo_root
from agentia_tools.net import free_ports
from agentia_tools.runtime import local_keys, mesh

from .conftest import Infra, wait_for

pytestmark = pytest.mark.integration
FIRST = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
SLOW = 'wait {"seconds": 2}'
# Long enough to be seen running and still be running when the second run arrives, on a
# loaded 2-core CI machine.
LONG = 'wait {"seconds": 8}'


@pytest.fixture(scope="module")
def replicas(
    infra: Infra, mesh_service: Callable[[str], None], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.GATEWAY):
        mesh_service(app_id)
    logs: Path = tmp_path_factory.mktemp("gateway-2")
    ports = names.AppPorts(*free_ports(5))
    env = {**os.environ, **mesh.app_environment(names.GATEWAY, ports, infra.tokens)}
    app = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "agentia_gateway.app:create_app",
            "--factory",
            *("--host", "127.0.0.1", "--port", str(ports.app), "--no-access-log"),
        ],
        cwd=repo_root(),
        env=env,
        stdout=(logs / "gateway-2.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    sidecar = subprocess.Popen(
        mesh.sidecar_command(infra.bins, names.GATEWAY, ports),
        cwd=infra.home,
        env=env,
        stdout=(logs / "gateway-2-dapr.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    key = {"x-api-key": local_keys.read_local_key(infra.home) or ""}
    a = httpx.Client(base_url=FIRST, headers=key, timeout=60)
    b = httpx.Client(base_url=f"http://127.0.0.1:{ports.app}", headers=key, timeout=60)
    try:
        for client in (a, b):
            wait_for(
                lambda c=client: c.post("/threads/search", json={}).status_code == 200,
                90,
                "a replica",
            )
        yield a, b
    finally:
        a.close()
        b.close()
        for proc in (sidecar, app):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Fire the calls at the same instant from threads."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_reject_holds_across_replicas(replicas: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = replicas
    tid = a.post("/threads", json={}).json()["thread_id"]
    body = {"input": SLOW}
    ra, rb = _at_once(
        [
            lambda: a.post(f"/threads/{tid}/runs", json=body),
            lambda: b.post(f"/threads/{tid}/runs", json=body),
        ]
    )
    assert sorted([ra.status_code, rb.status_code]) == [200, 409], (ra.text, rb.text)
    winner = (ra if ra.status_code == 200 else rb).json()
    assert (
        b.get(f"/threads/{tid}/runs/{winner['run_id']}/join").json()["run"]["status"] == "success"
    )


def test_enqueue_from_two_replicas_runs_one_after_the_other(
    replicas: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = replicas
    tid = a.post("/threads", json={}).json()["thread_id"]
    ra, rb = _at_once(
        [
            lambda: a.post(
                f"/threads/{tid}/runs",
                json={"input": "first " + SLOW, "multitask_strategy": "enqueue"},
            ),
            lambda: b.post(
                f"/threads/{tid}/runs",
                json={"input": "second " + SLOW, "multitask_strategy": "enqueue"},
            ),
        ]
    )
    assert ra.status_code == rb.status_code == 200, (ra.text, rb.text)
    for run in (ra.json(), rb.json()):
        assert (
            a.get(f"/threads/{tid}/runs/{run['run_id']}/join").json()["run"]["status"] == "success"
        )
    messages = a.get(f"/threads/{tid}/state").json()["values"]["messages"]
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    assert len(users) == 2
    # No interleaving: the second run's input comes after everything the first run produced.
    first_run = messages[users[0] : users[1]]
    assert first_run[-1]["role"] == "assistant" and "tool_calls" not in first_run[-1]


def test_stream_started_on_one_replica_resumes_on_the_other(
    replicas: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = replicas
    tid = a.post("/threads", json={}).json()["thread_id"]
    body = {"input": SLOW, "stream_mode": ["events"], "on_disconnect": "continue"}
    last_id = ""
    with a.stream("POST", f"/threads/{tid}/runs/stream", json=body) as resp:
        run_id = resp.headers["content-location"].rsplit("/", 1)[-1]
        for line in resp.iter_lines():
            if line.startswith("id: "):
                last_id = line[4:]
                break
    assert last_id
    seen: list[dict[str, Any]] = []
    with b.stream(
        "GET", f"/threads/{tid}/runs/{run_id}/stream", headers={"Last-Event-ID": last_id}
    ) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
    assert seen and all(e["seq"] > int(last_id) for e in seen)
    assert seen[-1]["kind"] == "run.completed"


def _users_and_last(messages: list[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    users = [str(m["content"]) for m in messages if m["role"] == "user"]
    return users, messages[-1]


@pytest.mark.parametrize("strategy", ["interrupt", "rollback"])
def test_interrupt_and_rollback_from_the_other_replica(
    replicas: tuple[httpx.Client, httpx.Client], strategy: str
) -> None:
    a, b = replicas
    tid = a.post("/threads", json={}).json()["thread_id"]
    first = a.post(f"/threads/{tid}/runs", json={"input": "first " + LONG})
    assert first.status_code == 200, first.text
    first_url = f"/threads/{tid}/runs/{first.json()['run_id']}"

    def first_running() -> bool:
        status = a.get(first_url).json()["status"]
        assert status in ("pending", "running"), f"first run ended ({status}) before it was seen"
        return status == "running"

    wait_for(first_running, 60, "first run running")
    second = b.post(
        f"/threads/{tid}/runs",
        json={"input": "second: hello", "multitask_strategy": strategy},
    )
    assert second.status_code == 200, second.text
    done = b.get(f"/threads/{tid}/runs/{second.json()['run_id']}/join").json()
    assert done["run"]["status"] == "success"
    old = a.get(first_url)
    if strategy == "rollback":
        assert old.status_code == 404, old.text  # rolled back: the run is deleted too
    else:
        assert old.json()["status"] == "interrupted"
    messages = a.get(f"/threads/{tid}/state").json()["values"]["messages"]
    users, last = _users_and_last(messages)
    # The new run starts only after the old one stopped: its answer is the thread's last word,
    # and nothing of the old run comes after the new run's input.
    assert last["role"] == "assistant" and "hello" in str(last["content"])
    after_second = messages[[str(m["content"]) for m in messages].index("second: hello") :]
    assert not any("first" in str(m.get("content")) for m in after_second)
    if strategy == "rollback":
        assert users == ["second: hello"], messages  # the interrupted run left nothing
    else:
        assert users[-1] == "second: hello"
