"""Each subscription of a sidecar keeps exactly one consumer, and keeps delivering, through
its broker connection being cut again and again.

Dapr 1.18.0's RabbitMQ component sent basic.consume outside the lock that guards the AMQP
channel its subscriptions share, while another subscription declared its queue on it:
amqp091-go does not serialise a channel's RPCs, the replies crossed ("unexpected command
received"), and the broker was left with consumers whose deliveries nobody reads (on kind:
13 consumers on agent-runner's queue, 11 runs never run;
runtime/dapr/patches/components-contrib-consume-under-lock.patch). A probe app with a topic
and its dead-letter topic (two subscriptions on one channel, as every service has) has its
connection closed by the broker; each time, its queues must come back to one consumer each
and an event published must reach the app.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import pytest
import yaml

from agentia import names
from agentia_tools.runtime.infra_config import InfraSettings
from agentia_tools.runtime.infra_servers import RABBITMQ_BIN, rabbitmq_env, server_root
from agentia_tools.runtime.mesh import components_dir
from agentia_tools.runtime.secrets_file import read_secrets
from agentia_tools.runtime.watchdog import queue_states

from .conftest import Infra, ProbeApp, wait_for

pytestmark = pytest.mark.integration
ROUNDS = 6


def _rabbitmqctl(infra: Infra, *args: str) -> str:
    settings = InfraSettings.from_env()
    env = {
        **os.environ,
        **rabbitmq_env(server_root(infra.home), settings.rabbitmq_port, settings.host),
    }
    return subprocess.run(
        [str(RABBITMQ_BIN / "rabbitmqctl"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def _named_components(folder: Path, client_name: str) -> Path:
    """The mesh's components, the pub/sub's connection named ``client_name`` (so this test
    closes its own connection and no other)."""
    shutil.copytree(components_dir(), folder, ignore=shutil.ignore_patterns("config"))
    doc = yaml.safe_load((folder / "pubsub.yaml").read_text())
    doc["spec"]["metadata"].append({"name": "clientName", "value": client_name})
    (folder / "pubsub.yaml").write_text(yaml.safe_dump(doc))
    return folder


def _connections(infra: Infra, client_name: str) -> list[str]:
    """The pids of the broker's connections named ``client_name`` (rabbitmqctl's table
    gives the pid as close_connection takes it; its JSON gives the client's properties)."""
    out = _rabbitmqctl(
        infra, "list_connections", "name", "client_properties", "--formatter", "json", "-q"
    )
    named = set()
    for conn in json.loads(out or "[]"):
        # client_properties are [name, type, value] triples
        props = {p[0]: p[-1] for p in conn.get("client_properties") or [] if p}
        if props.get("connection_name") == client_name:
            named.add(str(conn["name"]))
    table = _rabbitmqctl(infra, "list_connections", "pid", "name", "-q", "--no-table-headers")
    rows = [line.split("\t", 1) for line in table.splitlines() if "\t" in line]
    return [pid for pid, name in rows if name.strip() in named]


def test_every_subscription_keeps_one_consumer_through_cut_connections(
    infra: Infra, probe_apps: Callable[..., ProbeApp], tmp_path: Path
) -> None:
    amqp = read_secrets(infra.home)[names.SECRET_RABBITMQ_URL]
    client_name = f"consumers-{uuid.uuid4().hex[:8]}"
    probe = probe_apps(
        "consumers", resources=[_named_components(tmp_path / "components", client_name)]
    )
    queues = [f"{probe.app_id}-{probe.topic}", f"{probe.app_id}-{probe.topic}.dlq"]

    def one_consumer_each() -> bool:
        states = queue_states(amqp, queues)
        return len(states) == len(queues) and all(s.consumers == 1 for s in states.values())

    def delivered(n: int) -> bool:
        return n in {(e.get("data") or {}).get("n") for e in probe.received()["received"]}

    wait_for(one_consumer_each, 60, "one consumer on each of the probe's queues")
    for n in range(ROUNDS):
        wait_for(lambda: bool(_connections(infra, client_name)), 60, "the probe's connection")
        for conn in _connections(infra, client_name):
            _rabbitmqctl(infra, "close_connection", conn, "consumers test")
        wait_for(
            lambda: one_consumer_each() and bool(_connections(infra, client_name)),
            60,
            f"one consumer on each queue after cut {n + 1}",
        )
        publish = f"{probe.dapr}/v1.0/publish/{names.PUBSUB}/{probe.topic}"
        resp = httpx.post(publish, json={"n": n}, headers=probe.headers(), timeout=30)
        assert resp.status_code == 204, resp.text
        wait_for(partial(delivered, n), 60, f"event {n} handed to the app")
    states = queue_states(amqp, queues)
    assert {q: s.consumers for q, s in states.items()} == dict.fromkeys(queues, 1)
