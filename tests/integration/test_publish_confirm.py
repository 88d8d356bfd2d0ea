"""A publish the broker never confirmed is not reported as done.

Dapr 1.18.0's RabbitMQ component logged a missing confirm (a nack, or the channel closing
before the confirm came) and answered the app as if the event were published: it was lost
(runtime/dapr/patches/components-contrib-publish-confirm.patch). Here a real sidecar
publishes through Toxiproxy in front of the real broker; the link towards the broker is cut
(Toxiproxy's `timeout` toxic: nothing gets through, the connection is closed after 3 s)
while a publish waits for its confirm, then healed. Whatever the sidecar answers, a success
must mean the event is in the broker's queue.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pika
import pytest
import yaml

from agentia import names
from agentia_tools.chaos import network
from agentia_tools.net import free_ports
from agentia_tools.runtime.mesh import components_dir
from agentia_tools.runtime.secrets_file import read_secrets

from .conftest import Infra, ProbeApp, wait_for

PUBSUB = "pubsub-proxied"


@pytest.fixture
def toxiproxy(tmp_path: Path) -> Iterator[str]:
    """A Toxiproxy server of this test's own (its API URL)."""
    port = free_ports(1)[0]
    log = (tmp_path / "toxiproxy.log").open("wb")
    proc = subprocess.Popen(
        [str(network.binary()), "-host", "127.0.0.1", "-port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{api}/version", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, 30, "Toxiproxy")
        yield api
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _proxied_pubsub(folder: Path, amqp: str) -> Path:
    """components/pubsub.yaml as a component named PUBSUB whose broker URL is ``amqp``."""
    doc = yaml.safe_load((components_dir() / "pubsub.yaml").read_text())
    doc["metadata"]["name"] = PUBSUB
    keep = [m for m in doc["spec"]["metadata"] if m["name"] not in ("connectionString",)]
    keep = [m for m in keep if not m["name"].endswith("Scopes")]
    doc["spec"]["metadata"] = [{"name": "connectionString", "value": amqp}, *keep]
    doc.pop("auth", None)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pubsub-proxied.yaml").write_text(yaml.safe_dump(doc))
    return folder


def _queued(amqp: str, queue: str) -> list[bytes]:
    with pika.BlockingConnection(pika.URLParameters(amqp)) as conn:
        channel = conn.channel()
        bodies = []
        while True:
            _, _, body = channel.basic_get(queue, auto_ack=True)
            if body is None:
                return bodies
            bodies.append(body)


def test_a_publish_the_broker_never_confirmed_is_not_a_success(
    infra: Infra,
    probe_apps: Callable[..., ProbeApp],
    toxiproxy: str,
    tmp_path: Path,
) -> None:
    amqp = read_secrets(infra.home)[names.SECRET_RABBITMQ_URL]
    broker = urlsplit(amqp)
    listen = free_ports(1)[0]
    proxy = {
        "name": "amqp",
        "listen": f"127.0.0.1:{listen}",
        "upstream": f"{broker.hostname}:{broker.port or 5672}",
        "enabled": True,
    }
    httpx.post(f"{toxiproxy}/proxies", json=proxy, timeout=5).raise_for_status()
    proxied = urlunsplit(broker._replace(netloc=f"{broker.netloc.rsplit(':', 1)[0]}:{listen}"))
    topic = f"probe.confirm.{uuid.uuid4().hex[:8]}"
    queue = f"{topic}.check"
    # Our own queue on the topic's exchange: it holds exactly what the broker accepted.
    with pika.BlockingConnection(pika.URLParameters(amqp)) as conn:
        channel = conn.channel()
        channel.exchange_declare(topic, "fanout", durable=True)
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, topic)
    probe = probe_apps(
        "confirm",
        topic=topic,
        subscribe=False,
        resources=[components_dir(), _proxied_pubsub(tmp_path / "components", proxied)],
    )
    url = f"{probe.dapr}/v1.0/publish/{PUBSUB}/{topic}"
    try:
        first = httpx.post(url, json={"n": 1}, headers=probe.headers(), timeout=60)
        assert first.status_code == 204, first.text
        wait_for(lambda: len(_queued_peek(amqp, queue)) == 1, 30, "the first event queued")

        toxic = {
            "name": "cut",
            "type": "timeout",
            "stream": "upstream",
            "toxicity": 1.0,
            "attributes": {"timeout": 3000},
        }
        httpx.post(f"{toxiproxy}/proxies/amqp/toxics", json=toxic, timeout=5).raise_for_status()

        def heal() -> None:
            time.sleep(6)
            httpx.delete(f"{toxiproxy}/proxies/amqp/toxics/cut", timeout=5)

        healer = threading.Thread(target=heal, daemon=True)
        healer.start()
        second = httpx.post(url, json={"n": 2}, headers=probe.headers(), timeout=90)
        healer.join(10)
        bodies = _queued(amqp, queue)
        numbers = sorted({json.loads(b)["data"]["n"] for b in bodies})
        if second.status_code == 204:
            # Told it was published: then the broker has it (a retry may have put it twice).
            assert 2 in numbers, f"the sidecar said 204, the broker has {numbers}"
        else:
            assert second.status_code >= 500, second.text  # an error the app can retry
        assert 1 in numbers
    finally:
        with pika.BlockingConnection(pika.URLParameters(amqp)) as conn:
            channel = conn.channel()
            channel.queue_delete(queue)
            channel.exchange_delete(topic)


def _queued_peek(amqp: str, queue: str) -> list[int]:
    with pika.BlockingConnection(pika.URLParameters(amqp)) as conn:
        found = conn.channel().queue_declare(queue, durable=True, passive=True)
        return [0] * found.method.message_count
