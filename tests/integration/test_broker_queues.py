"""Queue depths from the local broker: its Prometheus endpoint (what the watchdog reads every
check) and rabbitmqctl (what it asks when a number must be as of now) agree on a queue whose
consumer holds its prefetch unacknowledged."""

from __future__ import annotations

import uuid

import httpx
import pika
import pytest

from agentia import names
from agentia_tools.runtime import broker_queues
from agentia_tools.runtime.infra_config import InfraSettings
from agentia_tools.runtime.infra_servers import rabbitmq_metrics_port
from agentia_tools.runtime.secrets_file import read_secrets

from .conftest import Infra, wait_for

pytestmark = pytest.mark.integration


def test_held_messages_are_counted_alike_by_the_endpoint_and_rabbitmqctl(infra: Infra) -> None:
    settings = InfraSettings.from_env()
    endpoint = f"http://{settings.host}:{rabbitmq_metrics_port(settings.rabbitmq_port)}/metrics"
    assert httpx.get(endpoint, timeout=10).status_code == 200, "the broker's endpoint is off"
    queue = f"depth-probe-{uuid.uuid4().hex[:8]}"
    params = pika.URLParameters(read_secrets(infra.home)[names.SECRET_RABBITMQ_URL])
    with pika.BlockingConnection(params) as conn:
        channel = conn.channel()
        channel.queue_declare(queue, auto_delete=True)
        try:
            for _ in range(20):
                channel.basic_publish("", queue, b"{}")
            channel.basic_qos(prefetch_count=16)
            held: list[int] = []
            channel.basic_consume(queue, lambda _c, m, _p, _b: held.append(m.delivery_tag))

            def endpoint_says_held() -> bool:
                conn.process_data_events(0.1)  # keeps the connection served while we wait
                return broker_queues.per_queue("messages_unacknowledged").get(queue) == 16

            # The broker refreshes these numbers every few seconds.
            wait_for(endpoint_says_held, 30, "16 held in the broker's metrics")
            assert len(held) == 16
            assert broker_queues.per_queue("messages_unacknowledged", exact=True)[queue] == 16
            assert broker_queues.per_queue("messages", exact=True)[queue] == 20
        finally:
            channel.queue_delete(queue)
