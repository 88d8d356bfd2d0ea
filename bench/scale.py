"""Scale: how the run figures change with 1, 2 and 4 replicas of agent-runner on this machine.

Each replica is a real agent-runner process with its own sidecar and the same Dapr app id:
service invocation spreads create-and-wait calls across them (name resolution), and they
share one durable ``runs.requested`` queue (competing consumers). For each replica count,
in the same run: create-and-wait through two sidecars (wrk) and N background runs through
RabbitMQ. The 1-replica row is the baseline; every figure is printed beside it, with the
ratio. On a 2-core machine more replicas mostly share the same cores: read the ratios as
the mesh's own overhead of scaling out, not as capacity.

    .venv/bin/python bench/scale.py [--replicas 1,2,4] [--duration 10] [--background 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from agentia import names
from agentia.paths import agentia_home, repo_root
from agentia_tools.runtime import mesh

sys.path.insert(0, str(repo_root()))
from bench.invoke_overhead import RESULTS, start_app_with_sidecar, start_services, wrk
from bench.runs import LUA, background


def start_runner(tokens: mesh.Tokens, logs: Path, n: int) -> list[subprocess.Popen[bytes]]:
    ports, procs = start_app_with_sidecar(
        names.AGENT_RUNNER, tokens, logs / f"replica-{n}", "agentia_runner.app:create_app"
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{ports.app}/healthz", timeout=2).status_code == 200:
                return procs
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit(f"agent-runner replica {n} did not come up; see {logs}")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", default="1,2,4")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--background", type=int, default=100)
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.replicas.split(",")})
    home = agentia_home()
    print("• starting infrastructure, control plane, agent-runner, gateway", flush=True)
    # Calls go through the gateway's sidecar: agent-runner answers run requests only from
    # the gateway (agentia_tools.access).
    _, plan = start_services((names.AGENT_RUNNER, names.GATEWAY), timeout=90)
    logs = home / "logs" / "bench" / f"scale-{uuid.uuid4().hex[:6]}"
    for n in range(2, max(counts) + 1):
        (logs / f"replica-{n}").mkdir(parents=True, exist_ok=True)
    caller = names.PORTS[names.GATEWAY]
    token = {"dapr-api-token": plan.tokens.dapr_api_token}
    url = (
        f"http://127.0.0.1:{caller.dapr_http}/v1.0/invoke/{names.AGENT_RUNNER}"
        "/method/internal/runs/wait"
    )
    extra: list[list[subprocess.Popen[bytes]]] = []
    rows: dict[int, dict[str, float]] = {}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA % uuid.uuid4().hex[:8])
    try:
        for count in counts:
            while len(extra) + 1 < count:
                extra.append(start_runner(plan.tokens, logs, len(extra) + 2))
            while len(extra) + 1 > count:
                stop(extra.pop())
            time.sleep(3)  # replicas register in name resolution and join the queue
            print(f"• {count} replica(s): create-and-wait {args.duration}s (wrk)", flush=True)
            wrk(url, 3, args.connections, token, script=f.name)  # warm up every replica
            wait = wrk(url, args.duration, args.connections, token, script=f.name)
            print(f"• {count} replica(s): {args.background} background runs", flush=True)
            bg = background(caller.dapr_http, plan.tokens.dapr_api_token, args.background)
            rows[count] = {
                "wait_rps": wait["rps"],
                "wait_p50_ms": wait["p50_ms"],
                "wait_p99_ms": wait["p99_ms"],
                "wait_errors": wait["errors"],
                "background_per_s": bg["completed_per_s"],
                "background_unfinished": bg["unfinished"],
            }
    finally:
        Path(f.name).unlink(missing_ok=True)
        for procs in extra:
            stop(procs)
    report(rows, counts, args)


def report(rows: dict[int, dict[str, float]], counts: list[int], args: argparse.Namespace) -> None:
    base = rows[counts[0]]
    print(
        f"\n{'agent-runner replicas':22} {'wait runs/s':>11} {'ratio':>6} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'bg runs/s':>10} {'ratio':>6} {'lost':>5}"
    )
    for count in counts:
        r = rows[count]
        label = f"{count}" + (" (baseline)" if count == counts[0] else "")
        print(
            f"{label:22} {r['wait_rps']:11.1f} {r['wait_rps'] / base['wait_rps']:6.2f} "
            f"{r['wait_p50_ms']:8.0f} {r['wait_p99_ms']:8.0f} {r['background_per_s']:10.1f} "
            f"{r['background_per_s'] / base['background_per_s']:6.2f} "
            f"{r['background_unfinished']:5.0f}"
        )
    print(f"cores: {os.cpu_count()}; every replica and sidecar shares them")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "scale.json"
    out.write_text(
        json.dumps(
            {
                "tool": "wrk",
                "connections": args.connections,
                "duration_s": args.duration,
                "background_runs": args.background,
                "cores": os.cpu_count(),
                "replicas": rows,
            },
            indent=1,
        )
    )
    print(f"written: {out.relative_to(repo_root())}")


if __name__ == "__main__":
    main()
