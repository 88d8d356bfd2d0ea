"""No in-process state: with two replicas each of the gateway and memory, spread over both
workers, a thread started through one gateway pod is continued through the other, and
reads the same from both, while one memory pod is deleted between the runs.

Each gateway pod is reached on its own (``kubectl port-forward pod/…``), so the test knows
which replica served which call; the replica counts are put back afterwards.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from agentia_tools.kind import kind_key_path
from agentia_tools.kind_build import tool_path
from agentia_tools.kind_up import CONTEXT

from .conftest import NAMESPACE, kubectl, kubectl_json, wait_for

pytestmark = pytest.mark.timeout(600)
REPLICAS = 2


def _ready_pods(app: str) -> list[dict[str, Any]]:
    items = kubectl_json("get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/name={app}")
    return [
        p
        for p in items["items"]
        if p["metadata"].get("deletionTimestamp") is None
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    ]


def _scale(app: str, replicas: int) -> list[dict[str, Any]]:
    kubectl("-n", NAMESPACE, "scale", f"deployment/{app}", f"--replicas={replicas}")
    pods: list[dict[str, Any]] = wait_for(
        lambda: (p := _ready_pods(app)) and len(p) == replicas and p,
        300,
        f"{replicas} Ready pods of {app}",
        every=2,
    )
    return pods


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _forward(pod: str) -> Iterator[httpx.Client]:
    """A client of one gateway pod's app port, through ``kubectl port-forward``."""
    port = _free_port()
    tool = str(tool_path("kubectl", print, build=False))
    cmd = [tool, "--context", CONTEXT, "-n", NAMESPACE, "port-forward", f"pod/{pod}"]
    proc = subprocess.Popen(
        [*cmd, f"{port}:8000"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    key = kind_key_path().read_text().strip()
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"x-api-key": key}, timeout=120
        ) as client:
            wait_for(
                lambda: client.get("/healthz").status_code == 200, 60, f"port-forward to {pod}"
            )
            yield client
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def two_of_each() -> Iterator[dict[str, list[dict[str, Any]]]]:
    before = {
        app: int(kubectl_json("get", "deployment", app, "-n", NAMESPACE)["spec"]["replicas"])
        for app in ("gateway", "memory")
    }
    try:
        yield {app: _scale(app, REPLICAS) for app in before}
    finally:
        for app, count in before.items():
            _scale(app, count)


def _messages(client: httpx.Client, thread: str) -> list[tuple[str, str]]:
    state = client.get(f"/threads/{thread}/state")
    assert state.status_code == 200, state.text
    return [(m["role"], str(m["content"])) for m in state.json()["values"]["messages"]]


def test_a_thread_continues_on_the_other_gateway_replica(
    two_of_each: dict[str, list[dict[str, Any]]],
) -> None:
    gateways = [p["metadata"]["name"] for p in two_of_each["gateway"]]
    nodes = {p["spec"]["nodeName"] for p in two_of_each["gateway"] + two_of_each["memory"]}
    assert len(gateways) == REPLICAS
    body = {"assistant_id": "assistant", "input": {"messages": [{"role": "user", "content": ""}]}}
    with _forward(gateways[0]) as first, _forward(gateways[1]) as second:
        thread = first.post("/threads", json={}).json()["thread_id"]
        body["input"]["messages"][0]["content"] = "hello from replica one"
        run = first.post(f"/threads/{thread}/runs/wait", json=body)
        assert run.status_code == 200 and run.json()["run"]["status"] == "success", run.text
        # One memory replica goes; the other (and the new pod) serve from the same stores.
        victim = two_of_each["memory"][0]["metadata"]["name"]
        kubectl("-n", NAMESPACE, "delete", "pod", victim, "--grace-period=0", "--force")
        body["input"]["messages"][0]["content"] = "hello from replica two"
        run = second.post(f"/threads/{thread}/runs/wait", json=body)
        assert run.status_code == 200 and run.json()["run"]["status"] == "success", run.text
        seen_first, seen_second = _messages(first, thread), _messages(second, thread)
    assert seen_first == seen_second, "the two gateway replicas read the thread differently"
    users = [text for role, text in seen_first if role == "user"]
    assert users == ["hello from replica one", "hello from replica two"]
    assert [role for role, _ in seen_first] == ["user", "assistant", "user", "assistant"]
    print(f"gateway and memory replicas ran on: {', '.join(sorted(nodes))}")
