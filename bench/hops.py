"""What one run costs on the mesh: sidecar calls by kind and CPU time per process, per run.

Starts the whole mesh (infrastructure, control plane, the five services and their sidecars),
then for each way a run can start through the gateway (create-and-wait, background, streamed,
create-and-wait on a thread) runs N runs with the offline model and reads, per run:
- every call each service made to its sidecar (``agentia_sidecar_calls_total`` on each app's
  ``/metrics``, by kind and target) and every request the sidecar delivered to each app
  (``agentia_http_requests_total``: invocations and subscription deliveries);
- the CPU time of each process tree (app, sidecar, RabbitMQ, PostgreSQL, Redis).
The mesh's background work (key refreshes, scheduler ticks) is measured idle first and its
rate taken off. The baseline, in the same run: the CPU time of the same runs with the Agents
SDK in this process. Then latency, one run at a time: a whole run and its first message
delta, through the gateway (``/runs/wait``; ``/runs/stream``) beside in-process. Calls made
by the workflow client (gRPC) are not counted here.

    .venv/bin/python bench/hops.py [--runs 40] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from agentia import names
from agentia.paths import agentia_home, repo_root
from agentia_tools.runtime import local_keys
from agentia_tools.runtime.supervisor import Supervisor
from agentia_tools.runtime.watchdog import stray_queues, subscriptions

sys.path.insert(0, str(repo_root()))
from bench.gateway import bench_key
from bench.invoke_overhead import RESULTS, start_services

INFRA = ("rabbitmq", "postgres", "redis")
BODY = {"assistant_id": "assistant", "input": "hello there"}
Counts = defaultdict[str, float]  # a scrape: sample name -> value
QUIET_S = 2.0  # counters unchanged this long: the runs' trailing events are all handled


def scrape() -> Counts:
    """Sidecar calls and deliveries of every service, keyed ``app  out call target`` /
    ``app  in METHOD route``."""
    seen: Counts = defaultdict(float)
    for app in names.APP_IDS:
        text = httpx.get(f"http://127.0.0.1:{names.PORTS[app].app}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "agentia_sidecar_calls_total":
                    seen[f"{app:12} out {s.labels['call']} {s.labels['target']}"] += s.value
                elif s.name == "agentia_http_requests_total":
                    route = s.labels["route"]
                    if route not in ("/livez", "/healthz", "/metrics"):
                        seen[f"{app:12} in  {s.labels['method']} {route}"] += s.value
                elif s.name == "agentia_runs_finished_total":
                    seen["runs finished"] += s.value
    return seen


def cpu_seconds(sup: Supervisor) -> dict[str, float]:
    """CPU seconds (user + system) of each process tree the supervisor runs."""
    out: dict[str, float] = {}
    for proc in sup.processes():
        if not proc.pid:
            continue
        try:
            root = psutil.Process(proc.pid)
            tree = [root, *root.children(recursive=True)]
            # children_*: the tree's exited children (PostgreSQL's ended backends).
            times = [p.cpu_times() for p in tree]
            out[proc.name] = sum(
                t.user + t.system + t.children_user + t.children_system for t in times
            )
        except psutil.Error:
            continue
    return out


def settle(before: Counts, runs: int, deadline_s: float = 180) -> Counts:
    """Scrape until ``runs`` more runs have finished and nothing has moved for QUIET_S."""
    deadline = time.monotonic() + deadline_s
    last, still_since = scrape(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = scrape()
        if now != last:
            last, still_since = now, time.monotonic()
        elif (
            now["runs finished"] - before["runs finished"] >= runs
            and time.monotonic() - still_since >= QUIET_S
        ):
            return now
    sys.exit(f"the runs did not all finish within {deadline_s:.0f}s; see .agentia/logs")


async def drive(
    n: int, concurrency: int, one: Callable[[httpx.AsyncClient], Awaitable[None]], key: str
) -> None:
    gateway = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=gateway, headers={"x-api-key": key}, timeout=60) as c:

        async def bounded() -> None:
            async with sem:
                await one(c)

        await asyncio.gather(*(bounded() for _ in range(n)))


async def wait_run(c: httpx.AsyncClient) -> None:
    (await c.post("/runs/wait", json=BODY)).raise_for_status()


async def background_run(c: httpx.AsyncClient) -> None:
    (await c.post("/runs", json=BODY)).raise_for_status()


async def stream_run(c: httpx.AsyncClient) -> None:
    async with c.stream("POST", "/runs/stream", json=BODY) as resp:
        resp.raise_for_status()
        async for _ in resp.aiter_bytes():
            pass


async def thread_run(c: httpx.AsyncClient) -> None:
    thread = (await c.post("/threads", json={})).raise_for_status().json()["thread_id"]
    (await c.post(f"/threads/{thread}/runs/wait", json=BODY)).raise_for_status()


MODES: dict[str, Callable[[httpx.AsyncClient], Awaitable[None]]] = {
    "wait": wait_run,
    "background": background_run,
    "stream": stream_run,
    "thread": thread_run,
}


def in_process_cpu_ms(n: int) -> float:
    """CPU ms per run of the same runs with the Agents SDK in this process (the baseline)."""
    from agents import RunConfig, Runner

    from agentia_runner.offline_model import OfflineModelProvider
    from agentia_runner.registry import Registry

    agent = Registry.load(repo_root() / "agents").agent("assistant")
    cfg = RunConfig(model_provider=OfflineModelProvider(), tracing_disabled=True)

    async def all_runs() -> None:
        for _ in range(n):
            await Runner.run(agent, "hello there", run_config=cfg)

    started = time.process_time()
    asyncio.run(all_runs())
    return (time.process_time() - started) * 1000 / n


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def in_process_latency(n: int) -> dict[str, float]:
    """One run at a time in this process: p50 of the whole run and of its first text delta."""
    from agents import RunConfig, Runner

    from agentia_runner.offline_model import OfflineModelProvider
    from agentia_runner.registry import Registry

    agent = Registry.load(repo_root() / "agents").agent("assistant")
    cfg = RunConfig(model_provider=OfflineModelProvider(), tracing_disabled=True)
    whole, first = [], []
    for _ in range(n):
        started = time.perf_counter()
        result = Runner.run_streamed(agent, "hello there", run_config=cfg)
        seen = None
        async for ev in result.stream_events():
            text = ev.type == "raw_response_event" and ev.data.type.endswith("text.delta")
            if seen is None and text:
                seen = time.perf_counter() - started
        whole.append((time.perf_counter() - started) * 1000)
        first.append((seen or 0.0) * 1000)
    return {"run_p50_ms": pct(whole, 50), "first_delta_p50_ms": pct(first, 50)}


async def gateway_latency(n: int, key: str) -> dict[str, float]:
    """One run at a time through the gateway: /runs/wait p50, and /runs/stream's time to
    the first message delta (stream mode ``messages``) p50."""
    gateway = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
    whole, first = [], []
    async with httpx.AsyncClient(base_url=gateway, headers={"x-api-key": key}, timeout=60) as c:
        for _ in range(n):
            started = time.perf_counter()
            await wait_run(c)
            whole.append((time.perf_counter() - started) * 1000)
        body = {**BODY, "stream_mode": ["messages"]}
        for _ in range(n):
            started = time.perf_counter()
            seen = None
            async with c.stream("POST", "/runs/stream", json=body) as resp:
                resp.raise_for_status()
                async for line in resp.aiter_lines():
                    if seen is None and line.startswith("event: messages"):
                        seen = time.perf_counter() - started
            first.append((seen or 0.0) * 1000)
    return {"run_p50_ms": pct(whole, 50), "first_delta_p50_ms": pct(first, 50)}


def measure(
    sup: Supervisor, mode: str, runs: int, concurrency: int, key: str, idle: dict[str, float]
) -> dict[str, Any]:
    before, cpu0, t0 = scrape(), cpu_seconds(sup), time.monotonic()
    asyncio.run(drive(runs, concurrency, MODES[mode], key))
    after = settle(before, runs)
    took, cpu1 = time.monotonic() - t0, cpu_seconds(sup)
    calls = {
        k: (after[k] - before[k] - idle.get(k, 0.0) * took) / runs
        for k in after
        if k != "runs finished" and after[k] != before[k]
    }
    cpu = {
        name: (cpu1[name] - cpu0.get(name, cpu1[name]) - idle.get(f"cpu {name}", 0.0) * took)
        * 1000
        / runs
        for name in cpu1
    }
    return {"calls": calls, "cpu_ms": cpu, "seconds": took}


def idle_rates(sup: Supervisor, seconds: float) -> dict[str, float]:
    """What the mesh does by itself, per second: calls and CPU seconds."""
    before, cpu0 = scrape(), cpu_seconds(sup)
    time.sleep(seconds)
    after, cpu1 = scrape(), cpu_seconds(sup)
    rates = {k: (after[k] - before[k]) / seconds for k in after if after[k] != before[k]}
    for name, used in cpu1.items():
        rates[f"cpu {name}"] = (used - cpu0.get(name, used)) / seconds
    return rates


def report(results: dict[str, dict[str, Any]], baseline_cpu_ms: float) -> None:
    modes = list(results)
    head = "".join(f"{m:>12}" for m in modes)
    print(f"\n{'sidecar calls per run (app, direction, kind, target)':64}{head}")
    keys = sorted({k for r in results.values() for k in r["calls"]})
    for k in keys:
        row = [results[m]["calls"].get(k, 0.0) for m in modes]
        if any(abs(v) >= 0.05 for v in row):
            print(f"{k:64}" + "".join(f"{v:12.1f}" for v in row))
    for direction, label in (("out", "calls to sidecars"), ("in ", "deliveries to apps")):
        totals = [
            sum(v for k, v in results[m]["calls"].items() if k[13:16] == direction) for m in modes
        ]
        print(f"{'total ' + label:64}" + "".join(f"{v:12.1f}" for v in totals))
    print(f"\n{'CPU ms per run, by process tree':64}{head}")
    print(
        f"{'in-process Agents SDK, same runs (baseline)':64}"
        + f"{baseline_cpu_ms:12.1f}" * len(modes)
    )
    names_ = sorted({n for r in results.values() for n in r["cpu_ms"]})
    for n in names_:
        row = [results[m]["cpu_ms"].get(n, 0.0) for m in modes]
        if any(v >= 0.05 for v in row):
            print(f"{n:64}" + "".join(f"{v:12.1f}" for v in row))
    totals = [sum(results[m]["cpu_ms"].values()) for m in modes]
    print(f"{'total':64}" + "".join(f"{v:12.1f}" for v in totals))
    print(
        "ratio to in-process".ljust(64) + "".join(f"{v / baseline_cpu_ms:11.0f}x" for v in totals)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="runs per mode")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds measured idle")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        sys.exit(f"--modes: unknown {', '.join(unknown)} (choose from {', '.join(MODES)})")
    home = agentia_home()
    print("• in-process baseline (Agents SDK, offline model)", flush=True)
    baseline = in_process_cpu_ms(args.runs)
    base_latency = asyncio.run(in_process_latency(args.runs))
    print("• starting the whole mesh", flush=True)
    sup, _ = start_services(tuple(names.APP_IDS), timeout=180)
    key_name, key = bench_key(home)
    stray = stray_queues(subscriptions())
    if stray:
        # Each keeps a copy of every event on its topic: RabbitMQ's figure counts them too.
        print(
            f"! {len(stray)} queues on the broker no mesh app reads "
            f"({sum(stray.values())} messages): RabbitMQ's CPU below includes storing "
            "every event in them as well",
            flush=True,
        )
    try:
        print("• warming up (5 runs each way)", flush=True)
        for mode in modes:
            asyncio.run(drive(5, 1, MODES[mode], key))
        settle(scrape(), 0)
        print(f"• the mesh idle for {args.idle:.0f}s", flush=True)
        idle = idle_rates(sup, args.idle)
        print(f"• latency: {args.runs} runs one at a time, waited and streamed", flush=True)
        latency = asyncio.run(gateway_latency(args.runs, key))
        results: dict[str, dict[str, Any]] = {}
        for mode in modes:
            print(f"• {args.runs} runs, {mode}, {args.concurrency} at a time", flush=True)
            results[mode] = measure(sup, mode, args.runs, args.concurrency, key, idle)
    finally:
        local_keys.revoke_key(home, key_name)
    report(results, baseline)
    print(f"\n{'one run at a time, p50 ms':64}{'whole run':>12}{'1st delta':>12}")
    for label, row in (
        ("in-process Agents SDK (baseline)", base_latency),
        ("through the gateway (/runs/wait; /runs/stream)", latency),
    ):
        print(f"{label:64}{row['run_p50_ms']:12.1f}{row['first_delta_p50_ms']:12.1f}")
    added = {k: latency[k] - base_latency[k] for k in latency}
    print(f"{'added by the mesh':64}{added['run_p50_ms']:12.1f}{added['first_delta_p50_ms']:12.1f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "hops.json"
    doc = {
        "in_process_cpu_ms": baseline,
        "modes": results,
        "latency": {"in_process": base_latency, "gateway": latency},
        "stray_queues": len(stray),
    }
    out.write_text(json.dumps(doc, indent=1))
    print(f"written: {out.relative_to(repo_root())}")


if __name__ == "__main__":
    main()
