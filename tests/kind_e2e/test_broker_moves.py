"""The broker moves to the other worker with its volume: messages that were in a durable
queue before RabbitMQ's pod was rescheduled onto the other node are there after it.

RabbitMQ's volume is a folder both workers mount (deploy/kind/infra/shared-volumes.yaml);
with a node-local volume the pod could not start on the other node (the move times out),
and with an empty one the queue would be gone (the passive declare fails). The broker is
reached through ``kubectl port-forward`` to its pod, on loopback.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pika
import pytest

from agentia_tools.chaos import kind_faults
from agentia_tools.kind_build import tool_path
from agentia_tools.kind_up import CONTEXT

from .conftest import NAMESPACE, kubectl, kubectl_json, wait_for

pytestmark = pytest.mark.timeout(600)
MESSAGES = 50


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _amqp_url(port: int) -> str:
    secret = kubectl_json("get", "secret", "agentia-infra", "-n", NAMESPACE)
    password = base64.b64decode(secret["data"]["rabbitmq-password"]).decode()
    return f"amqp://agentia:{password}@127.0.0.1:{port}/%2F"


@contextmanager
def _broker() -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    """A channel to the broker's current pod, through a port-forward."""
    port = _free_port()
    tool = str(tool_path("kubectl", print, build=False))
    cmd = [tool, "--context", CONTEXT, "-n", NAMESPACE, "port-forward", "pod/rabbitmq-0"]
    proc = subprocess.Popen(
        [*cmd, f"{port}:5672"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    params = pika.URLParameters(_amqp_url(port))

    def connect() -> pika.BlockingConnection | None:
        try:
            return pika.BlockingConnection(params)
        except pika.exceptions.AMQPConnectionError:
            return None  # the port-forward is not listening yet

    try:
        conn = wait_for(connect, 60, "AMQP through the port-forward", every=2)
        try:
            yield conn.channel()
        finally:
            conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def kubectl_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fault drives `kubectl` by name, as the chaos runner's PATH has it."""
    folder = tool_path("kubectl", print, build=False).parent
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def _node() -> str:
    pod = kubectl_json("get", "pod", "rabbitmq-0", "-n", NAMESPACE)
    return str(pod["spec"]["nodeName"])


def _runs_again(gateway: httpx.Client) -> bool:
    done = gateway.post("/runs/wait", json={"agent_id": "assistant", "input": "hello"})
    return done.status_code == 200 and done.json()["run"]["status"] == "success"


@pytest.mark.usefixtures("kubectl_on_path")
def test_queued_messages_follow_the_broker_to_the_other_worker(gateway: httpx.Client) -> None:
    queue = f"e2e-broker-moves-{uuid.uuid4().hex[:8]}"
    with _broker() as ch:
        ch.confirm_delivery()
        ch.queue_declare(queue, durable=True)
        for i in range(MESSAGES):
            ch.basic_publish("", queue, f"m{i}".encode(), pika.BasicProperties(delivery_mode=2))
    before = _node()
    try:
        moved = kind_faults.reschedule("rabbitmq", timeout=300)
        after = _node()
        assert after != before, moved
        with _broker() as ch:
            found = ch.queue_declare(queue, durable=True, passive=True)
            assert found.method.message_count == MESSAGES, moved
            bodies = []
            for _ in range(MESSAGES):
                _, _, body = ch.basic_get(queue, auto_ack=True)
                bodies.append(body)
            assert bodies == [f"m{i}".encode() for i in range(MESSAGES)]
    finally:
        with _broker() as ch:
            ch.queue_delete(queue)
        # The mesh's sidecars find the moved broker again before the next test runs: a
        # publish written to a connection not yet seen to be dead is reported as sent by
        # Dapr 1.18 (docs/kubernetes.md, "What this pass found").
        wait_for(lambda: _runs_again(gateway), 180, "a run through the moved broker", every=3)
    # The node the broker left is schedulable again.
    spec = kubectl_json("get", "node", before).get("spec", {})
    assert not spec.get("unschedulable"), kubectl("get", "nodes")
