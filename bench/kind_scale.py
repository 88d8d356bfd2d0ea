"""Scale-out on the kind cluster: agent-runner at 1, 2 and 4 replicas over both workers.

For each replica count, in one run against the cluster `agentia kind up` made (through the
gateway's public API on 127.0.0.1:30800, the key it keeps in .agentia/kind-api-key):
- scale-up: ``kubectl scale`` until that many pods are Ready, and where they landed;
- background runs: N runs posted in batches of 50 (``POST /runs/batch``), runs/s from the
  first post until the last one ended (the gateway's ``updated_at``);
- create-and-wait: C clients doing ``POST /runs/wait`` for D seconds: runs/s, p50, p99.
Then scale-down to 1 until the others are gone. The 1-replica row is the baseline; every
figure is printed beside it with the ratio. The cluster's nodes are containers on this
machine's 2 cores: read the ratios as what scaling out costs and gains here, not as
capacity. The replica count is set by hand: KEDA, which would set it from the queue's
depth, is not built offline.

    .venv/bin/python bench/kind_scale.py [--replicas 1,2,4] [--background 200]
                                         [--clients 8] [--duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import time
from datetime import datetime
from typing import Any

import httpx

from agentia_tools.kind import GATEWAY_URL, kind_key_path
from agentia_tools.kind_render import NAMESPACE
from agentia_tools.kind_up import CONTEXT

APP = "agent-runner"
FINAL = {"success", "error", "interrupted", "timeout"}
BATCH = 50  # the gateway takes up to 100 runs per batch call


def kubectl(*args: str) -> str:
    cmd = ["kubectl", "--context", CONTEXT, "-n", NAMESPACE, *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout


def ready_pods() -> list[dict[str, Any]]:
    out = kubectl("get", "pods", "-l", f"app.kubernetes.io/name={APP}", "-o", "json")
    pods = json.loads(out)["items"]
    return [
        p
        for p in pods
        if p["metadata"].get("deletionTimestamp") is None
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    ]


def all_pods() -> int:
    out = kubectl("get", "pods", "-l", f"app.kubernetes.io/name={APP}", "-o", "json")
    return len(json.loads(out)["items"])


def scale(replicas: int, timeout: float = 600) -> tuple[float, list[str]]:
    """Scale, wait until exactly ``replicas`` pods are Ready and no others are left."""
    started = time.monotonic()
    kubectl("scale", f"deployment/{APP}", f"--replicas={replicas}")
    while time.monotonic() - started < timeout:
        pods = ready_pods()
        if len(pods) == replicas and all_pods() == replicas:
            return time.monotonic() - started, sorted(p["spec"]["nodeName"] for p in pods)
        time.sleep(1)
    raise SystemExit(f"{APP} did not settle at {replicas} replicas within {timeout:.0f}s")


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def background(client: httpx.AsyncClient, count: int) -> float:
    """Post ``count`` background runs; runs/s from the first post until the last one ended."""
    started = time.time()
    body = [{"agent_id": "assistant", "input": f"hello {i}"} for i in range(count)]
    ids: list[str] = []
    for i in range(0, count, BATCH):
        resp = await client.post("/runs/batch", json=body[i : i + BATCH])
        resp.raise_for_status()
        ids += [r["run_id"] for r in resp.json()]
    pending, ended = list(ids), 0.0
    deadline = time.monotonic() + 600
    while pending and time.monotonic() < deadline:
        answers = await asyncio.gather(*(client.get(f"/runs/{r}") for r in pending[:32]))
        still = []
        for run_id, resp in zip(pending[:32], answers, strict=True):
            run = resp.json() if resp.status_code == 200 else {}
            if run.get("status") in FINAL:
                ended = max(ended, _epoch(run["updated_at"]))
            else:
                still.append(run_id)
        pending = still + pending[32:]
        if still:
            await asyncio.sleep(0.5)
    if pending:
        raise SystemExit(f"{len(pending)} background runs did not end within 600 s")
    return count / (ended - started)


async def create_and_wait(
    client: httpx.AsyncClient, clients: int, duration: float
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + duration

    async def one_client() -> None:
        nonlocal errors
        while time.monotonic() < stop:
            t0 = time.monotonic()
            resp = await client.post("/runs/wait", json={"agent_id": "assistant", "input": "hi"})
            if resp.status_code == 200 and resp.json()["run"]["status"] == "success":
                latencies.append(time.monotonic() - t0)
            else:
                errors += 1

    started = time.monotonic()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    return {
        "wait_runs_per_s": len(ordered) / elapsed,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "errors": errors,
    }


async def measure(args: argparse.Namespace) -> dict[str, float]:
    key = kind_key_path().read_text().strip()
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(
        base_url=GATEWAY_URL, headers={"x-api-key": key}, timeout=120, limits=limits
    ) as client:
        await create_and_wait(client, 2, 3)  # warm the path after the scale
        row = await create_and_wait(client, args.clients, args.duration)
        row["background_runs_per_s"] = await background(client, args.background)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--replicas", default="1,2,4")
    parser.add_argument("--background", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    counts = [int(n) for n in args.replicas.split(",")]
    if not kind_key_path().exists():
        raise SystemExit("no kind cluster key: run `agentia kind up` first")
    rows: dict[int, dict[str, Any]] = {}
    for n in counts:
        up_s, nodes = scale(n)
        print(f"• {n} replica(s) Ready in {up_s:.1f}s on {', '.join(nodes)}; measuring", flush=True)
        rows[n] = {**asyncio.run(measure(args)), "scale_s": up_s, "nodes": nodes}
    down_s, _ = scale(1)
    report(rows, counts[0], down_s, args)


def report(
    rows: dict[int, dict[str, Any]], base: int, down_s: float, args: argparse.Namespace
) -> None:
    print(
        f"\nagent-runner scale-out on kind (offline model; {args.clients} clients x "
        f"{args.duration:g}s create-and-wait, {args.background} background runs)"
    )
    head = f"{'replicas':>8} {'ready in s':>10} {'bg runs/s':>10} {'x':>5}"
    print(f"{head} {'wait runs/s':>11} {'x':>5} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}  nodes")
    ref = rows[base]
    for n, r in rows.items():
        bg_x = r["background_runs_per_s"] / ref["background_runs_per_s"]
        wait_x = r["wait_runs_per_s"] / ref["wait_runs_per_s"]
        spread = ", ".join(f"{node} x{r['nodes'].count(node)}" for node in sorted(set(r["nodes"])))
        print(
            f"{n:>8} {r['scale_s']:>10.1f} {r['background_runs_per_s']:>10.1f} {bg_x:>5.2f} "
            f"{r['wait_runs_per_s']:>11.1f} {wait_x:>5.2f} {r['p50_ms']:>7.0f} {r['p99_ms']:>7.0f} "
            f"{r['errors']:>6}  {spread}"
        )
    print(f"scale-down from {max(rows)} to 1: {down_s:.1f}s until the others were gone")


if __name__ == "__main__":
    main()
