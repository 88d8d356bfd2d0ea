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
from pathlib import Path
from typing import Any

import gevent
import pika
from locust import FastHttpUser, User, constant, events, task
from locust.exception import StopUser

TOTAL = int(os.environ.get("BENCH_EVENTS", "1000"))
_numbers = itertools.count()


@events.quitting.add_listener
def _write_totals(environment: Any, **_kwargs: Any) -> None:
    """The totals as Locust prints them at exit, for bench/pubsub.py (Locust's CSV is written
    on an interval and can miss a run shorter than it)."""
    total = environment.stats.total
    Path(os.environ["BENCH_STATS_OUT"]).write_text(
        json.dumps(
            {
                "published": total.num_requests,
                "failed": total.num_failures,
                "publish_per_s": total.total_rps,
                "publish_p50_ms": total.get_response_time_percentile(0.5),
                "publish_p99_ms": total.get_response_time_percentile(0.99),
            }
        )
    )


def _next_or_stop(user: User) -> int:
    number = next(_numbers)
    if number >= TOTAL:
        if user.environment.runner is not None:
            gevent.spawn(user.environment.runner.quit)
        raise StopUser
    return number


class DaprPublish(FastHttpUser):
    """POST /v1.0/publish through a sidecar (which wraps a CloudEvent, confirms, persists)."""

    wait_time = constant(0)

    @task
    def publish(self) -> None:
        number = _next_or_stop(self)
        # Several components on one broker ("lanes") spread the publishes: each has its own
        # channel, and Dapr's RabbitMQ component waits for one confirm at a time per channel.
        lanes = os.environ.get("BENCH_PUBSUBS", "pubsub").split(",")
        pubsub = lanes[number % len(lanes)]
        self.client.post(
            f"/v1.0/publish/{pubsub}/{os.environ['BENCH_TOPIC']}",
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
