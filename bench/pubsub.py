"""Pub/sub: events published and delivered through RabbitMQ via two Dapr sidecars, vs. the
same events published and consumed straight on RabbitMQ with a Python AMQP client (pika).

Measured in the same run, on the same machine, with the same broker and the same settings
(durable queue, persistent messages, publisher confirms, prefetch 16, manual acks). The
load is Locust (bench/locust_pubsub.py): U users publish N numbered events, each stamped
with the time; the subscriber on the other side (an app behind its sidecar, or a pika
consumer) keeps the time from publish to delivery. Figures: publish calls/s and their
p50/p99 (from Locust), events delivered/s end to end and the end-to-end p50/p99.

    .venv/bin/python bench/pubsub.py [--events 10000] [--users 8] [--lanes 4]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pika
import psutil
import yaml

from agentia import names
from agentia.paths import agentia_home, repo_root
from agentia_tools.runtime import orchestrate
from agentia_tools.runtime.mesh import components_dir
from agentia_tools.runtime.secrets_file import read_secrets

sys.path.insert(0, str(repo_root()))
from bench.invoke_overhead import RESULTS, start_app_with_sidecar
from bench.runs import pct

PREFETCH = 16  # as components/pubsub.yaml


def lane_components(folder: Path, lanes: int) -> list[str]:
    """Write ``lanes - 1`` copies of components/pubsub.yaml named pubsub-lane-N into
    ``folder`` (the same broker and settings, each its own connection and channel); return
    the names of all lanes, ``pubsub`` first."""
    source = yaml.safe_load((components_dir() / "pubsub.yaml").read_text())
    names_ = [names.PUBSUB]
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, lanes):
        doc = {**source, "metadata": {**source["metadata"], "name": f"{names.PUBSUB}-lane-{n}"}}
        (folder / f"pubsub-lane-{n}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        names_.append(doc["metadata"]["name"])
    return names_


def locust(
    user: str, events: int, users: int, env: dict[str, str], host: str, out: Path
) -> dict[str, float]:
    """One headless Locust run of ``user`` until ``events`` are published."""
    exe = Path(sys.executable).parent / "locust"
    if not exe.exists():
        sys.exit("locust is needed: .venv/bin/pip install -c constraints.txt -e '.[bench]'")
    totals = out / f"{user}-{len(list(out.glob('*.json')))}.json"
    done = subprocess.run(
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
            "--loglevel",
            "WARNING",
            user,
        ],
        env={**os.environ, **env, "BENCH_EVENTS": str(events), "BENCH_STATS_OUT": str(totals)},
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(totals.read_text()) if totals.exists() else {}
    # Locust exits 1 when a request failed (counted in the result); anything else, or no
    # request made at all, is the load generator itself failing.
    if done.returncode not in (0, 1) or not result.get("published"):
        sys.exit(f"Locust ({user}) made no measurement:\n{done.stderr[-2000:]}")
    return result


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


class Cpu:
    """CPU seconds (user + system) of the processes a path uses, read before and after it."""

    def __init__(self, procs: dict[str, subprocess.Popen[bytes]]) -> None:
        self.procs = {label: psutil.Process(p.pid) for label, p in procs.items()}
        broker = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "beam.smp"]
        if broker:
            self.procs["RabbitMQ"] = broker[0]

    def now(self) -> dict[str, float]:
        out = {label: sum(p.cpu_times()[:2]) for label, p in self.procs.items()}
        # Locust runs to its end under subprocess.run, so it is counted among the reaped
        # children; the bench's own process holds the direct path's pika consumer.
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["Locust"] = kids.ru_utime + kids.ru_stime
        me = resource.getrusage(resource.RUSAGE_SELF)
        out["bench (pika consumer)"] = me.ru_utime + me.ru_stime
        return out


def run_path(
    label: str,
    cpu: Cpu,
    publish: Callable[[], dict[str, float]],
    delivered_so_far: Callable[[], dict[str, Any]],
    events: int,
) -> dict[str, Any]:
    """Publish ``events`` with ``publish``, wait until the subscriber has them all, and return
    the Locust figures, the delivery figures and each process's CPU ms per 1000 events."""
    print(f"• {label}", flush=True)
    before, started = cpu.now(), time.time()
    pub = publish()
    wait_until(lambda: delivered_so_far()["received"] >= events, 180, label)
    after = cpu.now()
    got = delivered_so_far()
    spent = {k: (after[k] - before[k]) * 1e6 / events for k in after}
    return {**pub, **delivered(got["latencies_ms"], started, got["last_at"]), "cpu": spent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument(
        "--lanes", type=int, default=4, help="pubsub components the lanes publisher spreads over"
    )
    args = parser.parse_args()
    home = agentia_home()
    print("• starting infrastructure and the Dapr control plane", flush=True)
    _, plan = orchestrate.start_infra(home, lambda m: None)
    amqp = read_secrets(home)[names.SECRET_RABBITMQ_URL]
    logs = home / "logs" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:8]
    topic = f"bench.pubsub.{run}"
    out = logs / f"locust-{run}"
    out.mkdir()
    lanes = lane_components(out / "lanes", args.lanes)
    sink, p1 = start_app_with_sidecar(
        "bench-sink", plan.tokens, logs, "bench.sink_app:create_app", {"BENCH_TOPIC": topic}
    )
    publisher, p2 = start_app_with_sidecar("bench-publisher", plan.tokens, logs)
    laned, p3 = start_app_with_sidecar(
        "bench-publisher-lanes", plan.tokens, logs, resources=[components_dir(), out / "lanes"]
    )
    procs = p1 + p2 + p3
    cpu = Cpu(
        {
            "publishing sidecar": p2[0],
            "publishing sidecar, lanes": p3[0],
            "subscribing sidecar": p1[0],
            "subscriber app": p1[1],
        }
    )
    stats_url = f"http://127.0.0.1:{sink.app}/stats"
    sink_stats = lambda: httpx.get(stats_url, timeout=30).json()  # noqa: E731
    dapr_env = {"BENCH_TOPIC": topic, "BENCH_DAPR_TOKEN": plan.tokens.dapr_api_token}
    try:
        time.sleep(2)  # the sink's sidecar subscribes once its app answers
        consumer = DirectConsumer(amqp, f"bench-direct-{run}")
        consumer.start()
        consumer.ready.wait(30)
        base = run_path(
            f"direct: {args.events} events, {args.users} Locust users, pika both ends",
            cpu,
            lambda: locust(
                "AmqpPublish",
                args.events,
                args.users,
                {"BENCH_AMQP_URL": amqp, "BENCH_EXCHANGE": consumer.exchange},
                "amqp://",
                out,
            ),
            lambda: {
                "received": len(consumer.seen),
                "latencies_ms": consumer.latencies,
                "last_at": consumer.last_at,
            },
            args.events,
        )
        consumer.stop.set()
        consumer.join(10)
        dapr = run_path(
            f"Dapr: {args.events} events through two sidecars",
            cpu,
            lambda: locust(
                "DaprPublish",
                args.events,
                args.users,
                dapr_env,
                f"http://127.0.0.1:{publisher.dapr_http}",
                out,
            ),
            sink_stats,
            args.events,
        )
        httpx.post(f"http://127.0.0.1:{sink.app}/reset", timeout=30).raise_for_status()
        laned_r = run_path(
            f"Dapr: {args.events} events, spread over {len(lanes)} pubsub lanes",
            cpu,
            lambda: locust(
                "DaprPublish",
                args.events,
                args.users,
                {**dapr_env, "BENCH_PUBSUBS": ",".join(lanes)},
                f"http://127.0.0.1:{laned.dapr_http}",
                out,
            ),
            sink_stats,
            args.events,
        )
        httpx.post(f"http://127.0.0.1:{sink.app}/reset", timeout=30).raise_for_status()
        bulk = run_path(
            f"Dapr: {args.events} events over {len(lanes)} lanes, taken by a bulk subscription",
            cpu,
            lambda: locust(
                "DaprPublish",
                args.events,
                args.users,
                {**dapr_env, "BENCH_TOPIC": f"{topic}.bulk", "BENCH_PUBSUBS": ",".join(lanes)},
                f"http://127.0.0.1:{laned.dapr_http}",
                out,
            ),
            sink_stats,
            args.events,
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)
        drop(amqp, [f"bench-sink-{t}" for t in (topic, f"{topic}.bulk")], [topic, f"{topic}.bulk"])
    report(base, dapr, laned_r, bulk, args)


def drop(amqp: str, queues: list[str], exchanges: list[str]) -> None:
    """Delete the queues and exchanges the run declared: a durable queue left bound to a
    topic would keep every later event of it (and cost the broker for each)."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp))
    try:
        ch = conn.channel()
        for q in queues:
            ch.queue_delete(q)
        for x in exchanges:
            ch.exchange_delete(x)
    finally:
        conn.close()


def report(
    base: dict[str, Any],
    dapr: dict[str, Any],
    laned: dict[str, Any],
    bulk: dict[str, Any],
    args: argparse.Namespace,
) -> None:
    paths = (
        ("RabbitMQ direct, pika (baseline)", base),
        ("through two Dapr sidecars", dapr),
        (f"the same, {args.lanes} publish lanes", laned),
        ("lanes and bulk subscription", bulk),
    )
    cols = ("pub/s", "pub p50", "pub p99", "deliv/s", "e2e p50", "e2e p99")
    units = ("", "ms", "ms", "", "ms", "ms")
    print(f"\n{'path':34} " + " ".join(f"{c:>8}" for c in cols))
    print(f"{'':34} " + " ".join(f"{u:>8}" for u in units))
    for label, r in paths:
        print(
            f"{label:34} {r['publish_per_s']:8.0f} {r['publish_p50_ms']:8.1f} "
            f"{r['publish_p99_ms']:8.1f} {r['delivered_per_s']:8.0f} {r['e2e_p50_ms']:8.1f} "
            f"{r['e2e_p99_ms']:8.1f}"
        )
    for label, r in paths[1:]:
        print(
            f"{label}: delivered/s {r['delivered_per_s'] / base['delivered_per_s']:.2f}x direct, "
            f"+{r['e2e_p50_ms'] - base['e2e_p50_ms']:.1f} ms at the e2e p50, "
            f"{r['failed']:.0f} failed publishes ({base['failed']:.0f} direct)"
        )
    print(f"\nCPU ms per 1000 events ({os.cpu_count()} cores: 2000 ms a second in all)")
    print(f"{'process':28} " + " ".join(f"{n:>10}" for n in ("direct", "Dapr", "lanes", "+bulk")))
    for proc in base["cpu"]:
        print(f"{proc:28} " + " ".join(f"{r['cpu'][proc]:10.0f}" for _, r in paths))
    print(f"{'all':28} " + " ".join(f"{sum(r['cpu'].values()):10.0f}" for _, r in paths))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "pubsub.json"
    path.write_text(
        json.dumps(
            {
                "tool": "locust",
                "events": args.events,
                "users": args.users,
                "lanes": args.lanes,
                "cores": os.cpu_count(),
                "direct": base,
                "dapr": dapr,
                "dapr_lanes": laned,
                "dapr_lanes_bulk_subscribe": bulk,
            },
            indent=1,
        )
    )
    print(f"written: {path.relative_to(repo_root())}")


if __name__ == "__main__":
    main()
