"""Agent runs on the mesh vs. the Agents SDK called in-process, with the same offline model.

Measured in the same run on the same machine:
- in-process: ``Runner.run`` in this process (the baseline), sequential and 16 at a time;
- create-and-wait through two Dapr sidecars to agent-runner (wrk, unique run ids);
- background runs through RabbitMQ: N ``runs.requested`` published, time until all finish.

    .venv/bin/python bench/runs.py [--duration 15] [--background 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from agentia import names
from agentia.paths import agentia_home, repo_root

sys.path.insert(0, str(repo_root()))
from bench.invoke_overhead import RESULTS, start_services, wrk

LUA = """
counter = 0
prefix = "%s"
request = function()
  counter = counter + 1
  local body = string.format(
    '{"run_id":"%%s-%%d-%%d","agent_id":"assistant","input":"hello there"}',
    prefix, math.random(1, 1000000000), counter)
  wrk.headers["Content-Type"] = "application/json"
  return wrk.format("POST", nil, nil, body)
end
"""


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def in_process(n: int, concurrency: int) -> dict[str, float]:
    from agents import RunConfig, Runner

    from agentia_runner.offline_model import OfflineModelProvider
    from agentia_runner.registry import Registry

    agent = Registry.load(repo_root() / "agents").agent("assistant")
    cfg = RunConfig(model_provider=OfflineModelProvider(), tracing_disabled=True)
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []

    async def one() -> None:
        async with sem:
            t = time.perf_counter()
            await Runner.run(agent, "hello there", run_config=cfg)
            lat.append((time.perf_counter() - t) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    took = time.perf_counter() - started
    return {"rps": n / took, "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90), "p99_ms": pct(lat, 99)}


def background(caller_dapr: int, token: str, n: int) -> dict[str, float]:
    headers = {"dapr-api-token": token}
    ids = [f"bg-{uuid.uuid4().hex[:10]}" for _ in range(n)]
    started = time.perf_counter()
    with httpx.Client(base_url=f"http://127.0.0.1:{caller_dapr}", headers=headers) as c:
        for rid in ids:
            c.post(
                f"/v1.0/publish/pubsub/{names.TOPIC_RUNS_REQUESTED}",
                json={"run_id": rid, "agent_id": "assistant", "input": "hello there"},
            )
        published = time.perf_counter() - started
        pending = set(ids)
        deadline = time.monotonic() + 300
        while pending and time.monotonic() < deadline:
            for rid in list(pending)[:50]:
                r = c.get(f"/v1.0/invoke/{names.AGENT_RUNNER}/method/internal/runs/{rid}")
                if r.status_code == 200 and r.json().get("status") == "success":
                    pending.discard(rid)
            time.sleep(0.05)
    took = time.perf_counter() - started
    return {
        "runs": n,
        "published_per_s": n / published,
        "completed_per_s": n / took,
        "unfinished": len(pending),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--background", type=int, default=200)
    args = parser.parse_args()
    home = agentia_home()
    print("• in-process baseline (Agents SDK, offline model)", flush=True)
    base_seq = asyncio.run(in_process(300, 1))
    base_conc = asyncio.run(in_process(600, args.connections))
    print("• starting infrastructure, control plane, agent-runner, gateway", flush=True)
    # Calls go through the gateway's sidecar: agent-runner's run methods answer only the
    # gateway (agentia_tools.access), as in production.
    _, plan = start_services((names.AGENT_RUNNER, names.GATEWAY), timeout=90)
    logs = home / "logs" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    caller = names.PORTS[names.GATEWAY]
    token = {"dapr-api-token": plan.tokens.dapr_api_token}
    url = f"http://127.0.0.1:{caller.dapr_http}/v1.0/invoke/{names.AGENT_RUNNER}/method/internal/runs/wait"
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(LUA % uuid.uuid4().hex[:8])
        print(f"• create-and-wait through the mesh for {args.duration}s (wrk)", flush=True)
        mesh = wrk(url, args.duration, args.connections, token, script=f.name)
        if mesh["errors"]:
            sys.exit(f"{mesh['errors']:.0f} create-and-wait requests failed; see {logs}")
        print(f"• {args.background} background runs through RabbitMQ", flush=True)
        bg = background(caller.dapr_http, plan.tokens.dapr_api_token, args.background)
    finally:
        Path(f.name).unlink(missing_ok=True)
    print(f"\n{'runs (offline model)':40} {'runs/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
    rows = [
        ("in-process SDK, 1 at a time (baseline)", base_seq),
        (f"in-process SDK, {args.connections} at a time", base_conc),
        (f"mesh create-and-wait, {args.connections} conns", mesh),
    ]
    for label, r in rows:
        print(
            f"{label:40} {r['rps']:8.1f} {r['p50_ms']:8.2f} {r['p90_ms']:8.2f} {r['p99_ms']:8.2f}"
        )
    print(
        f"added by the mesh at p50: {mesh['p50_ms'] - base_conc['p50_ms']:.1f} ms "
        f"(same concurrency); throughput ratio {mesh['rps'] / base_conc['rps']:.2f}"
    )
    print(
        f"background through RabbitMQ: {bg['completed_per_s']:.1f} runs/s completed "
        f"({bg['runs']:.0f} runs, {bg['unfinished']:.0f} unfinished)"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "runs.json"
    out.write_text(
        json.dumps(
            {
                "in_process_sequential": base_seq,
                "in_process_concurrent": base_conc,
                "mesh_create_and_wait": mesh,
                "background": bg,
                "connections": args.connections,
            },
            indent=1,
        )
    )
    print(f"written: {out.relative_to(repo_root())}")


if __name__ == "__main__":
    main()
