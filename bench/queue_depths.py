"""What asking the broker for queue depths costs: the watchdog's question every check while
a subscriber sits idle (how many messages its sidecar holds unacknowledged).

Starts the local infrastructure, holds 16 messages unacknowledged on a probe queue, then asks
N times each way, in one run: rabbitmqctl (the baseline: an Erlang VM per call) and the
broker's Prometheus endpoint (rabbitmq_prometheus, what the watchdog reads now). Printed per
call: wall time and the CPU of this process and its children (the CLI's VM).

    .venv/bin/python bench/queue_depths.py [--calls 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid

import pika

from agentia import names
from agentia.paths import agentia_home, repo_root
from agentia_tools.runtime import broker_queues, orchestrate
from agentia_tools.runtime.secrets_file import read_secrets

sys.path.insert(0, str(repo_root()))
from bench.invoke_overhead import RESULTS


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure(exact: bool, calls: int, queue: str, conn: pika.BlockingConnection) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(calls):
        conn.process_data_events(0)
        c0, w0 = cpu_s(), time.perf_counter()
        held = broker_queues.per_queue("messages_unacknowledged", exact).get(queue)
        walls.append(time.perf_counter() - w0)
        cpus.append(cpu_s() - c0)
        if held != 16:
            raise SystemExit(f"expected 16 held on {queue}, the broker said {held}")
    return {"wall_p50_ms": statistics.median(walls) * 1e3, "cpu_ms": statistics.mean(cpus) * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    home = agentia_home()
    orchestrate.start_infra(home, lambda m: print(f"[infra] {m}", flush=True))
    params = pika.URLParameters(read_secrets(home)[names.SECRET_RABBITMQ_URL])
    queue = f"bench-depth-{uuid.uuid4().hex[:8]}"
    with pika.BlockingConnection(params) as conn:
        channel = conn.channel()
        channel.queue_declare(queue, auto_delete=True)
        for _ in range(20):
            channel.basic_publish("", queue, b"{}")
        channel.basic_qos(prefetch_count=16)
        channel.basic_consume(queue, lambda _c, _m, _p, _b: None)
        deadline = time.monotonic() + 60  # the endpoint's numbers refresh every few seconds
        while broker_queues.per_queue("messages_unacknowledged").get(queue) != 16:
            if time.monotonic() > deadline:
                raise SystemExit("the broker's endpoint never showed the 16 held messages")
            conn.process_data_events(0.5)
        cli = measure(True, args.calls, queue, conn)
        http = measure(False, args.calls, queue, conn)
        channel.queue_delete(queue)
    print(f"{'per call':24} {'wall p50':>10} {'CPU':>10}")
    for label, r in (("rabbitmqctl (baseline)", cli), ("Prometheus endpoint", http)):
        print(f"{label:24} {r['wall_p50_ms']:8.1f} ms {r['cpu_ms']:7.1f} ms")
    ratio = cli["cpu_ms"] / max(http["cpu_ms"], 0.01)
    print(f"the endpoint costs 1/{ratio:.0f} of the CPU of a CLI call")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"calls": args.calls, "rabbitmqctl": cli, "endpoint": http}
    (RESULTS / "queue_depths.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
