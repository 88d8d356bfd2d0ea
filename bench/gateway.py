"""Create-and-wait through the gateway vs. the same call made directly to agent-runner.

Measured in the same run with wrk (16 connections, offline model, unique run ids):
- direct: POST agent-runner's ``/internal/runs/wait`` on its app port (no sidecars: the
  baseline, what the agent costs by itself);
- gateway: POST ``/runs/wait`` (Agent Protocol) — API key check, rate-limit counter in Redis,
  run record in PostgreSQL, Dapr invocation of agent-runner, settling the run.

    .venv/bin/python bench/gateway.py [--duration 15] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from agentia import names
from agentia.paths import agentia_home, repo_root
from agentia_tools.runtime import local_keys

sys.path.insert(0, str(repo_root()))
from bench.invoke_overhead import RESULTS, start_services, wrk

DIRECT = """
counter = 0
request = function()
  counter = counter + 1
  local body = string.format(
    '{"run_id":"bench-%s-%%d-%%d","agent_id":"assistant","input":"hello there"}',
    math.random(1, 1000000000), counter)
  wrk.headers["Content-Type"] = "application/json"
  return wrk.format("POST", nil, nil, body)
end
"""
GATEWAY_BODY = '{"assistant_id": "assistant", "input": "hello there"}'


def bench_key(home: Path) -> tuple[str, str]:
    """A write key with no practical rate limit (its name, its secret), once the running
    gateway takes it; revoke it by name afterwards."""
    key_name = f"bench-{uuid.uuid4().hex[:6]}"
    key, _ = local_keys.create_key(home, key_name, "write", rate_limit_per_minute=10_000_000)
    local_keys.reload_gateway_secrets(home)
    gateway = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
    deadline = time.monotonic() + 60
    while (
        httpx.post(f"{gateway}/threads/search", json={}, headers={"x-api-key": key}).status_code
        != 200
    ):
        if time.monotonic() > deadline:
            sys.exit("the gateway did not take the bench key")
        time.sleep(0.5)
    return key_name, key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    home = agentia_home()
    print("• starting infrastructure, agent-runner, memory and the gateway", flush=True)
    _, plan = start_services((names.MEMORY, names.AGENT_RUNNER, names.GATEWAY))
    key_name, key = bench_key(home)
    gateway = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
    runner = f"http://127.0.0.1:{names.PORTS[names.AGENT_RUNNER].app}/internal/runs/wait"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as direct_lua:
        direct_lua.write(DIRECT % uuid.uuid4().hex[:8])
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as gw_lua:
        gw_lua.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = '{GATEWAY_BODY}'\n"
        )
    try:
        print(f"• direct to agent-runner for {args.duration}s (wrk)", flush=True)
        direct = wrk(
            runner,
            args.duration,
            args.connections,
            {"dapr-api-token": plan.tokens.app_api_token},
            script=direct_lua.name,
        )
        print(f"• through the gateway for {args.duration}s (wrk)", flush=True)
        through = wrk(
            f"{gateway}/runs/wait",
            args.duration,
            args.connections,
            {"x-api-key": key},
            script=gw_lua.name,
        )
    finally:
        Path(direct_lua.name).unlink(missing_ok=True)
        Path(gw_lua.name).unlink(missing_ok=True)
        local_keys.revoke_key(home, key_name)
    print(
        f"\n{'create-and-wait (offline model)':36} {'runs/s':>8} {'p50 ms':>8} {'p99 ms':>8} errors"
    )
    for label, r in (
        ("direct to agent-runner (baseline)", direct),
        ("gateway /runs/wait", through),
    ):
        print(f"{label:36} {r['rps']:8.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:.0f}")
    print(
        f"gateway adds {through['p50_ms'] - direct['p50_ms']:.1f} ms at p50; "
        f"throughput ratio {through['rps'] / direct['rps']:.2f}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "gateway.json"
    out.write_text(
        json.dumps(
            {"direct": direct, "gateway": through, "connections": args.connections}, indent=1
        )
    )
    print(f"written: {out.relative_to(repo_root())}")


if __name__ == "__main__":
    main()
