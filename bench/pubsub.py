"""Pub/sub: events published and delivered through RabbitMQ via two Dapr sidecars, vs. the
same events published and consumed straight on RabbitMQ with a Python AMQP client (pika).

Measured in the same run, on the same machine, with the same broker and the same settings
(durable queue, persistent messages, publisher confirms, prefetch 16, manual acks). The
load is Locust (bench/locust_pubsub.py): U users publish N numbered events, each stamped
with the time; the subscriber on the other side (an app behind its sidecar, or a pika
consumer) keeps the time from publish to delivery. Figures: publish calls/s and their
p50/p99 (from Locust), events delivered/s end to end and the end-to-end p50/p99.

    .venv/bin/python bench/pubsub.py [--events 3000] [--users 8]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pika

from agentia import names
from agentia.paths import agentia_home, repo_root
from agentia.runtime import orchestrate
from agentia.runtime.secrets_file import read_secrets

sys.path.insert(0, str(repo_root()))
from bench.invoke_overhead import RESULTS, start_app_with_sidecar
from bench.runs import pct

PREFETCH = 16  # as components/pubsub.yaml


def locust(
    user: str, events: int, users: int, env: dict[str, str], host: str, out: Path
) -> dict[str, float]:
    """One headless Locust run of ``user`` until ``events`` are published."""
    exe = Path(sys.executable).parent / "locust"
    if not exe.exists():
        sys.exit("locust is needed: .venv/bin/pip install -c constraints.txt -e '.[bench]'")
    prefix = out / user
    subprocess.run(
        [
            str(exe),
            "-f",
            str(repo_root() / "bench" / "locust_pubsub.py"),
            "--headless",
            "--only-summary",
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            "300s",
            "--host",
            host,
            "--csv",
            str(prefix),
            "--loglevel",
            "WARNING",
            user,
        ],
        env={**os.environ, **env, "BENCH_EVENTS": str(events)},
        check=True,
        capture_output=True,
    )
    with open(f"{prefix}_stats.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return {
        "published": float(row["Request Count"]),
        "failed": float(row["Failure Count"]),
        "publish_per_s": float(row["Requests/s"]),
        "publish_p50_ms": float(row["50%"]),
        "publish_p99_ms": float(row["99%"]),
    }


def delivered(latencies: list[float], first_sent: float, last_at: float) -> dict[str, float]:
    took = max(last_at - first_sent, 1e-6)
    return {
        "delivered": float(len(latencies)),
        "delivered_per_s": len(latencies) / took,
        "e2e_p50_ms": pct(latencies, 50),
        "e2e_p99_ms": pct(latencies, 99),
    }


class DirectConsumer(threading.Thread):
    """A pika consumer on its own durable queue bound to its own fanout exchange."""

    def __init__(self, url: str, exchange: str) -> None:
        super().__init__(daemon=True)
        self.url, self.exchange, self.queue = url, exchange, f"{exchange}-q"
        self.latencies: list[float] = []
        self.seen: set[int] = set()
        self.last_at = 0.0
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        ch = conn.channel()
        ch.exchange_declare(self.exchange, "fanout", durable=True)
        ch.queue_declare(self.queue, durable=True)
        ch.queue_bind(self.queue, self.exchange)
        ch.basic_qos(prefetch_count=PREFETCH)

        def on_message(chan: Any, method: Any, _props: Any, body: bytes) -> None:
            data = json.loads(body)
            now = time.time()
            if data["i"] not in self.seen:
                self.seen.add(data["i"])
                self.latencies.append((now - data["t"]) * 1000)
                self.last_at = now
            chan.basic_ack(method.delivery_tag)

        ch.basic_consume(self.queue, on_message)
        self.ready.set()
        while not self.stop.is_set():
            conn.process_data_events(time_limit=0.2)
        ch.queue_delete(self.queue)
        ch.exchange_delete(self.exchange)
        conn.close()


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"{what} not done after {timeout:.0f}s")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--users", type=int, default=8)
    args = parser.parse_args()
    home = agentia_home()
    print("• starting infrastructure and the Dapr control plane", flush=True)
    _, plan = orchestrate.start_infra(home, lambda m: None)
    amqp = read_secrets(home)[names.SECRET_RABBITMQ_URL]
    logs = home / "logs" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:8]
    topic = f"bench.pubsub.{run}"
    sink, p1 = start_app_with_sidecar(
        "bench-sink", plan.tokens, logs, "bench.sink_app:create_app", {"BENCH_TOPIC": topic}
    )
    publisher, p2 = start_app_with_sidecar("bench-publisher", plan.tokens, logs)
    procs = p1 + p2
    out = logs / f"locust-{run}"
    out.mkdir()
    try:
        time.sleep(2)  # the sink's sidecar subscribes once its app answers
        print(
            f"• direct: {args.events} events, {args.users} Locust users, pika both ends", flush=True
        )
        consumer = DirectConsumer(amqp, f"bench-direct-{run}")
        consumer.start()
        consumer.ready.wait(30)
        started = time.time()
        base_pub = locust(
            "AmqpPublish",
            args.events,
            args.users,
            {
                "BENCH_AMQP_URL": amqp,
                "BENCH_EXCHANGE": consumer.exchange,
            },
            "amqp://",
            out,
        )
        wait_until(lambda: len(consumer.seen) >= args.events, 120, "direct deliveries")
        base = {**base_pub, **delivered(consumer.latencies, started, consumer.last_at)}
        consumer.stop.set()
        consumer.join(10)

        print(f"• Dapr: {args.events} events through two sidecars", flush=True)
        stats_url = f"http://127.0.0.1:{sink.app}/stats"
        started = time.time()
        dapr_pub = locust(
            "DaprPublish",
            args.events,
            args.users,
            {
                "BENCH_TOPIC": topic,
                "BENCH_DAPR_TOKEN": plan.tokens.dapr_api_token,
            },
            f"http://127.0.0.1:{publisher.dapr_http}",
            out,
        )
        wait_until(
            lambda: httpx.get(stats_url, timeout=5).json()["received"] >= args.events,
            180,
            "deliveries through Dapr",
        )
        stats = httpx.get(stats_url, timeout=30).json()
        dapr = {**dapr_pub, **delivered(stats["latencies_ms"], started, stats["last_at"])}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)
    report(base, dapr, args)


def report(base: dict[str, float], dapr: dict[str, float], args: argparse.Namespace) -> None:
    cols = ("pub/s", "pub p50", "pub p99", "deliv/s", "e2e p50", "e2e p99")
    units = ("", "ms", "ms", "", "ms", "ms")
    print(f"\n{'path':30} " + " ".join(f"{c:>8}" for c in cols))
    print(f"{'':30} " + " ".join(f"{u:>8}" for u in units))
    for label, r in (
        ("RabbitMQ direct, pika (baseline)", base),
        ("through two Dapr sidecars", dapr),
    ):
        print(
            f"{label:30} {r['publish_per_s']:8.0f} {r['publish_p50_ms']:8.1f} "
            f"{r['publish_p99_ms']:8.1f} {r['delivered_per_s']:8.0f} {r['e2e_p50_ms']:8.1f} "
            f"{r['e2e_p99_ms']:8.1f}"
        )
    print(
        "delivered/s ratio (Dapr / direct): "
        f"{dapr['delivered_per_s'] / base['delivered_per_s']:.2f}; "
        f"added at e2e p50: {dapr['e2e_p50_ms'] - base['e2e_p50_ms']:.1f} ms; "
        f"failed publishes: {base['failed']:.0f} direct, {dapr['failed']:.0f} Dapr"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "pubsub.json"
    path.write_text(
        json.dumps(
            {
                "tool": "locust",
                "events": args.events,
                "users": args.users,
                "cores": os.cpu_count(),
                "direct": base,
                "dapr": dapr,
            },
            indent=1,
        )
    )
    print(f"written: {path.relative_to(repo_root())}")


if __name__ == "__main__":
    main()
