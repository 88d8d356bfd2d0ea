"""Locust users for bench/pubsub.py: each publishes numbered events, stamped with the time,
until the run's total is reached; one through a Dapr sidecar, one straight to RabbitMQ.

Run by bench/pubsub.py (``locust -f bench/locust_pubsub.py --headless ... DaprPublish``),
which passes the targets in BENCH_* variables and counts deliveries on the other side.
"""

from __future__ import annotations

import itertools
import json
import os
import time

import gevent
import pika
from locust import HttpUser, User, constant, task
from locust.exception import StopUser

TOTAL = int(os.environ.get("BENCH_EVENTS", "1000"))
_numbers = itertools.count()


def _next_or_stop(user: User) -> int:
    number = next(_numbers)
    if number >= TOTAL:
        if user.environment.runner is not None:
            gevent.spawn(user.environment.runner.quit)
        raise StopUser
    return number


class DaprPublish(HttpUser):
    """POST /v1.0/publish through a sidecar (which wraps a CloudEvent, confirms, persists)."""

    wait_time = constant(0)

    @task
    def publish(self) -> None:
        number = _next_or_stop(self)
        self.client.post(
            f"/v1.0/publish/pubsub/{os.environ['BENCH_TOPIC']}",
            json={"i": number, "t": time.time()},
            headers={"dapr-api-token": os.environ["BENCH_DAPR_TOKEN"]},
            name="publish via sidecar",
        )


class AmqpPublish(User):
    """basic_publish straight to RabbitMQ with pika: persistent, with publisher confirms,
    as Dapr's component is configured."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.conn = pika.BlockingConnection(pika.URLParameters(os.environ["BENCH_AMQP_URL"]))
        self.channel = self.conn.channel()
        self.channel.confirm_delivery()

    def on_stop(self) -> None:
        self.conn.close()

    @task
    def publish(self) -> None:
        number = _next_or_stop(self)
        body = json.dumps({"i": number, "t": time.time()})
        started = time.perf_counter()
        error: Exception | None = None
        try:
            self.channel.basic_publish(
                os.environ["BENCH_EXCHANGE"],
                "",
                body,
                pika.BasicProperties(delivery_mode=2, content_type="application/json"),
            )
        except pika.exceptions.AMQPError as exc:
            error = exc
        self.environment.events.request.fire(
            request_type="AMQP",
            name="publish direct",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=len(body),
            exception=error,
            context={},
        )
