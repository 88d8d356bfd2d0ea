"""Durable agents: workflows started and completed per second, and recovery after kill -9.

Measured in the same run, on the same agent-runner (offline model, one calculator call per
conversation, so each workflow is a model turn, a tool call and a final model turn):
- baseline: the same conversation as a plain run (``/internal/runs/wait``), not durable;
- workflows: ``AgentLoop`` instances started in a batch through agent-runner's workflow
  routes, timed from the first start to the last completion (Dapr Workflows on the
  PostgreSQL actor state store, with the step ledger);
- recovery: an instance sleeping on a durable timer between two messages, agent-runner
  killed with kill -9, and the time until the instance records its next step, beside the
  time the process itself takes to come back healthy.

    .venv/bin/python bench/workflows.py [--batch 20] [--kills 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from agentia import names
from agentia.contracts import workflows as wf_api
from agentia.paths import agentia_home, repo_root
from agentia_tools.runtime import health, orchestrate

sys.path.insert(0, str(repo_root()))
from bench.invoke_overhead import RESULTS

CALC = 'calculator {"expression": "6*7"}'
RUNNER = f"http://127.0.0.1:{names.PORTS[names.AGENT_RUNNER].app}"


def _wait_healthy(apps: tuple[str, ...], timeout: float) -> float:
    start = time.monotonic()
    while not all(health.app_probe(a).ok and health.sidecar_probe(a).ok for a in apps):
        if time.monotonic() - start > timeout:
            sys.exit("the services did not come up; see .agentia/logs")
        time.sleep(0.2)
    return time.monotonic() - start


def plain_runs(client: httpx.Client, batch: int) -> dict[str, float]:
    def one(_: int) -> float:
        t = time.monotonic()
        body = {"run_id": f"bench-{uuid.uuid4().hex}", "agent_id": "assistant", "input": CALC}
        resp = client.post("/internal/runs/wait", json=body)
        resp.raise_for_status()
        return time.monotonic() - t

    start = time.monotonic()
    with ThreadPoolExecutor(batch) as pool:
        latencies = list(pool.map(one, range(batch)))
    return _figures(batch, time.monotonic() - start, latencies)


def workflows(client: httpx.Client, batch: int) -> dict[str, float]:
    def one(_: int) -> float:
        t = time.monotonic()
        inp = {"agent_id": "assistant", "messages": [CALC]}
        resp = client.post(wf_api.WORKFLOWS, json={"workflow": "AgentLoop", "input": inp})
        resp.raise_for_status()
        instance = resp.json()["instance_id"]
        while _status(client, instance)["status"] not in ("COMPLETED", "FAILED", "TERMINATED"):
            time.sleep(0.1)
        if _status(client, instance)["status"] != "COMPLETED":
            raise RuntimeError(f"{instance} did not complete")
        return time.monotonic() - t

    start = time.monotonic()
    with ThreadPoolExecutor(batch) as pool:
        latencies = list(pool.map(one, range(batch)))
    return _figures(batch, time.monotonic() - start, latencies)


def _status(client: httpx.Client, instance: str) -> dict[str, Any]:
    resp = client.get(wf_api.instance_path(instance))
    resp.raise_for_status()
    return dict(resp.json())


def _steps(client: httpx.Client, instance: str) -> int:
    try:
        resp = client.get(wf_api.steps_path(instance), timeout=2)
        return len(resp.json()["steps"]) if resp.status_code == 200 else -1
    except httpx.HTTPError:
        return -1


def _figures(n: int, wall: float, latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "n": n,
        "per_s": n / wall,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def recovery(client: httpx.Client, sup: Any) -> dict[str, float]:
    """kill -9 agent-runner while an instance sleeps; time to its next recorded step."""
    inp = {"agent_id": "assistant", "messages": [CALC, CALC], "pause_between_s": 1}
    resp = client.post(wf_api.WORKFLOWS, json={"workflow": "AgentLoop", "input": inp})
    resp.raise_for_status()
    instance = resp.json()["instance_id"]
    while (_status(client, instance).get("custom_status") or {}).get("phase") != "sleeping":
        time.sleep(0.05)
    before = _steps(client, instance)
    killed = time.monotonic()
    sup.kill(names.AGENT_RUNNER, "KILL")
    process_back = _wait_healthy((names.AGENT_RUNNER,), 120)
    while _steps(client, instance) <= before:
        if time.monotonic() - killed > 180:
            raise RuntimeError(f"{instance} made no progress in 180 s after the kill")
        time.sleep(0.05)
    resumed = time.monotonic() - killed
    while _status(client, instance)["status"] != "COMPLETED":
        time.sleep(0.2)
    return {"process_healthy_s": process_back, "workflow_resumed_s": resumed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    home = agentia_home()
    print("• starting infrastructure, the control plane, memory and agent-runner", flush=True)
    sup, plan = orchestrate.start_infra(home, lambda m: None)
    for app_id in (names.MEMORY, names.AGENT_RUNNER):
        for name in (app_id, f"{app_id}-dapr"):
            sup.start(name, wait=False)
    _wait_healthy((names.MEMORY, names.AGENT_RUNNER), 120)
    headers = {"dapr-api-token": plan.tokens.app_api_token}
    with httpx.Client(base_url=RUNNER, headers=headers, timeout=120) as client:
        print("• warm-up", flush=True)
        workflows(client, 2)
        plain_runs(client, 2)
        print(f"• {args.batch} plain runs at once (baseline)", flush=True)
        plain = plain_runs(client, args.batch)
        print(f"• {args.batch} AgentLoop workflows at once", flush=True)
        durable = workflows(client, args.batch)
        kills = []
        for i in range(args.kills):
            print(f"• kill -9 agent-runner mid-workflow ({i + 1}/{args.kills})", flush=True)
            kills.append(recovery(client, sup))
    print(f"\n{'model turn + tool + model turn':34} {'per s':>8} {'p50 ms':>9} {'p99 ms':>9}")
    for label, r in (("plain run (baseline)", plain), ("AgentLoop workflow", durable)):
        print(f"{label:34} {r['per_s']:8.2f} {r['p50_ms']:9.1f} {r['p99_ms']:9.1f}")
    print(f"workflow/plain throughput ratio {durable['per_s'] / plain['per_s']:.2f}")
    head = f"{'process healthy s':>18} {'workflow resumed s':>19}"
    print(f"\n{'after kill -9 of agent-runner':34} {head}")
    for i, k in enumerate(kills, 1):
        print(
            f"{'kill ' + str(i):34} {k['process_healthy_s']:18.2f} {k['workflow_resumed_s']:19.2f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "workflows.json"
    out.write_text(json.dumps({"plain": plain, "workflows": durable, "kills": kills}, indent=1))
    print(f"written: {out.relative_to(repo_root())}")


if __name__ == "__main__":
    main()
