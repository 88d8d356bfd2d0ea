"""KEDA scaling agent-runner on the queue's depth, on the kind cluster (overlay `full`).

In one run against the cluster `agentia kind up --overlay full` made (through the gateway's
public API on 127.0.0.1:30800, the key it keeps in .agentia/kind-api-key):
1. baseline: KEDA paused at 1 replica (the ScaledObject's `paused-replicas` annotation),
   N background runs posted at once (``POST /runs/batch``): runs/s until the last one ended;
2. the same N runs with KEDA in charge: runs/s, when it first scaled up, the most replicas
   and where they ran, then how long after the last run it took to come back to 1.
Replicas are sampled every 2 s and printed as a timeline. Both workers are containers on
this machine's 2 cores: read the ratio as what autoscaling does here, not as capacity.

    .venv/bin/python bench/kind_keda.py [--runs 600] [--down-timeout 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from agentia.paths import repo_root
from agentia_tools.kind import GATEWAY_URL, kind_key_path

sys.path.insert(0, str(repo_root()))
from bench.kind_scale import APP, background, kubectl, ready_pods

PAUSE = "autoscaling.keda.sh/paused-replicas"


@dataclass
class Sampler:
    """The Deployment's desired and ready replicas every 2 s, in a thread."""

    started: float = field(default_factory=time.monotonic)
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(2):
            spec = json.loads(kubectl("get", f"deployment/{APP}", "-o", "json"))
            ready = len(ready_pods())
            self.samples.append((time.monotonic() - self.started, spec["spec"]["replicas"], ready))

    def first_above(self, n: int) -> float | None:
        return next((t for t, want, _ in self.samples if want > n), None)


def scaled_object() -> dict[str, Any]:
    try:
        return dict(json.loads(kubectl("get", f"scaledobject/{APP}", "-o", "json")))
    except subprocess.CalledProcessError as exc:
        raise SystemExit(
            f"no ScaledObject '{APP}' on the cluster ({exc.stderr.strip()}): "
            "run `agentia kind up --overlay full` first"
        ) from None


def pause(paused: bool) -> None:
    value = f"{PAUSE}=1" if paused else f"{PAUSE}-"
    kubectl("annotate", f"scaledobject/{APP}", value, "--overwrite")


def wait_replicas(n: int, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        spec = json.loads(kubectl("get", f"deployment/{APP}", "-o", "json"))
        if spec["spec"]["replicas"] == n and len(ready_pods()) == n:
            return time.monotonic() - started
        time.sleep(2)
    return None


async def runs_per_s(count: int) -> float:
    key = kind_key_path().read_text().strip()
    async with httpx.AsyncClient(
        base_url=GATEWAY_URL, headers={"x-api-key": key}, timeout=120
    ) as client:
        return await background(client, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--down-timeout", type=float, default=600)
    args = parser.parse_args()
    spec = scaled_object()["spec"]
    print(
        f"• ScaledObject {APP}: {spec['minReplicaCount']} to {spec['maxReplicaCount']} replicas, "
        f"queue length {spec['triggers'][0]['metadata']['value']} a replica, "
        f"polled every {spec.get('pollingInterval', 30)} s",
        flush=True,
    )
    print("• baseline: KEDA paused at 1 replica", flush=True)
    pause(True)
    if wait_replicas(1, 300) is None:
        raise SystemExit(f"{APP} did not settle at 1 replica within 300 s")
    baseline = asyncio.run(runs_per_s(args.runs))
    print(f"  {args.runs} runs: {baseline:.1f} runs/s", flush=True)
    print("• KEDA in charge", flush=True)
    pause(False)
    sampler = Sampler()
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    keda = asyncio.run(runs_per_s(args.runs))
    ended = time.monotonic() - sampler.started
    peak_pods = sorted(p["spec"]["nodeName"] for p in ready_pods())
    down = wait_replicas(1, args.down_timeout)
    sampler.stop.set()
    thread.join()
    most = max((want for _, want, _ in sampler.samples), default=1)
    up = sampler.first_above(1)
    print(f"\n{'':40}{'runs/s':>10}{'x':>8}")
    print(f"{'1 replica (KEDA paused)':40}{baseline:10.1f}{1.0:8.2f}")
    print(f"{'KEDA on runs.requested depth':40}{keda:10.1f}{keda / baseline:8.2f}")
    print(f"\nfirst scale-up: {'never' if up is None else f'{up:.0f} s after the first post'}")
    print(f"most replicas asked: {most}; at the last run's end ready on: {', '.join(peak_pods)}")
    print(f"last run ended {ended:.0f} s after the first post")
    print(
        "back to 1 replica: "
        + (f"{down:.0f} s after the last run" if down else f"not within {args.down_timeout:.0f} s")
    )
    print("\ntimeline (s, replicas asked, ready):")
    for t, want, ready in sampler.samples[::5]:
        print(f"  {t:6.0f} {want:3d} {ready:3d}")


if __name__ == "__main__":
    main()
