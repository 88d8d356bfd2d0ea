"""Service invocation: direct HTTP to an app vs. the same call through two Dapr sidecars.

Both are measured in the same run, on the same machine, with wrk (Debian's package):
requests/s and latency percentiles, side by side, with the latency the sidecars add.
Dapr's own published figure for two sidecars is about 1.4 ms p90 and 2.1 ms p99 added.

    .venv/bin/python bench/invoke_overhead.py [--duration 15] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from agentia import names
from agentia.paths import agentia_home, repo_root
from agentia_tools.net import free_ports
from agentia_tools.runtime import health, mesh, orchestrate
from agentia_tools.runtime.daprbin import ensure_dapr_binaries
from agentia_tools.runtime.supervisor import Supervisor

RESULTS = repo_root() / "bench" / "results"


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is needed: sudo apt-get install wrk")
    print("• installing wrk (Debian)", flush=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "wrk"],
        check=True,
        capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which("wrk") or "wrk"


def wrk(
    url: str, seconds: int, connections: int, headers: dict[str, str], script: str | None = None
) -> dict[str, float]:
    cmd = [ensure_wrk(), "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        cmd += ["-s", script]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    result = {"rps": rps}
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        result[f"p{pct}_ms"] = float(m.group(1)) * scale
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["errors"] = float(errors.group(1)) if errors else 0.0
    return result


def start_services(
    app_ids: tuple[str, ...], timeout: float = 120
) -> tuple[Supervisor, orchestrate.MeshPlan]:
    """Infrastructure, the control plane and these mesh services with their sidecars, up and
    healthy (the mesh's own processes, under its supervisor)."""
    sup, plan = orchestrate.start_infra(agentia_home(), lambda m: None)
    for app_id in app_ids:
        for name in (app_id, mesh.sidecar_name(app_id)):
            sup.start(name, wait=False)
    deadline = time.monotonic() + timeout
    while not all(health.app_probe(a).ok and health.sidecar_probe(a).ok for a in app_ids):
        if time.monotonic() > deadline:
            sys.exit(f"{', '.join(app_ids)} did not come up; see .agentia/logs")
        time.sleep(0.5)
    return sup, plan


def start_app_with_sidecar(
    app_id: str,
    tokens: mesh.Tokens,
    logs: Path,
    factory: str = "bench.echo_app:create_app",
    extra_env: dict[str, str] | None = None,
    mtls: bool = True,
    resources: list[Path] | None = None,
) -> tuple[names.AppPorts, list[subprocess.Popen[bytes]]]:
    ports = names.AppPorts(*free_ports(5))
    env = {**os.environ, **mesh.app_environment(app_id, ports, tokens), **(extra_env or {})}
    app = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            factory,
            "--factory",
            "--port",
            str(ports.app),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=repo_root(),
        env=env,
        stdout=(logs / f"{app_id}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    bins = ensure_dapr_binaries(lambda m: None)
    side = subprocess.Popen(
        [
            *mesh.sidecar_command(bins, app_id, ports, resources, mtls=mtls),
            "--log-level",
            "warn",
        ],
        cwd=agentia_home(),
        env=env,
        stdout=(logs / f"{app_id}-dapr.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if (
                httpx.get(f"http://127.0.0.1:{ports.dapr_http}/v1.0/healthz", timeout=1).status_code
                == 204
            ):
                return ports, [side, app]
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{app_id} did not come up; see {logs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    home = agentia_home()
    print("• starting infrastructure and the Dapr control plane", flush=True)
    _, plan = orchestrate.start_infra(home, lambda m: None)
    logs = home / "logs" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        target, p1 = start_app_with_sidecar("bench-target", plan.tokens, logs)
        caller, p2 = start_app_with_sidecar("bench-caller", plan.tokens, logs)
        # The same pair without mTLS: what Sentry's certificates cost, in the same run.
        _, p3 = start_app_with_sidecar("bench-plain-target", plan.tokens, logs, mtls=False)
        plain_caller, p4 = start_app_with_sidecar(
            "bench-plain-caller", plan.tokens, logs, mtls=False
        )
        procs = p1 + p2 + p3 + p4
        token = {"dapr-api-token": plan.tokens.dapr_api_token}
        direct_url = f"http://127.0.0.1:{target.app}/ping"
        dapr_url = f"http://127.0.0.1:{caller.dapr_http}/v1.0/invoke/bench-target/method/ping"
        plain_url = (
            f"http://127.0.0.1:{plain_caller.dapr_http}/v1.0/invoke/bench-plain-target/method/ping"
        )
        paths = ((direct_url, {}), (plain_url, token), (dapr_url, token))
        for url, hdr in paths:  # warm up every path
            wrk(url, 3, args.connections, hdr)
        print(f"• measuring direct HTTP for {args.duration}s", flush=True)
        direct = wrk(direct_url, args.duration, args.connections, {})
        print(f"• measuring through two sidecars without mTLS for {args.duration}s", flush=True)
        plain = wrk(plain_url, args.duration, args.connections, token)
        print(f"• measuring through two sidecars with mTLS for {args.duration}s", flush=True)
        dapr = wrk(dapr_url, args.duration, args.connections, token)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)
    report(direct, plain, dapr, args)


def report(
    direct: dict[str, float],
    plain: dict[str, float],
    dapr: dict[str, float],
    args: argparse.Namespace,
) -> None:
    rows = [
        ("direct HTTP (baseline)", direct),
        ("two sidecars, no mTLS", plain),
        ("two sidecars, mTLS (mesh)", dapr),
    ]
    print(f"\n{'path':28} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for label, r in rows:
        print(
            f"{label:28} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p90_ms']:8.2f} "
            f"{r['p99_ms']:8.2f} {r['errors']:7.0f}"
        )
    added = {k: dapr[k] - direct[k] for k in ("p50_ms", "p90_ms", "p99_ms")}
    by_mtls = {k: dapr[k] - plain[k] for k in ("p50_ms", "p90_ms", "p99_ms")}
    for label, a in (("added by the sidecars", added), ("of which mTLS", by_mtls)):
        print(f"{label:28} {'':9} {a['p50_ms']:8.2f} {a['p90_ms']:8.2f} {a['p99_ms']:8.2f}")
    print(
        f"throughput ratio (sidecars / direct): {dapr['rps'] / direct['rps']:.2f}, without mTLS "
        f"{plain['rps'] / direct['rps']:.2f}; Dapr's published figure: +1.4 ms p90, +2.1 ms p99"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "invoke_overhead.json"
    out.write_text(
        json.dumps(
            {
                "tool": "wrk",
                "duration_s": args.duration,
                "connections": args.connections,
                "cores": os.cpu_count(),
                "direct": direct,
                "dapr_plain": plain,
                "dapr": dapr,
                "added_ms": added,
                "added_by_mtls_ms": by_mtls,
            },
            indent=1,
        )
    )
    print(f"written: {out.relative_to(repo_root())}")


if __name__ == "__main__":
    main()
