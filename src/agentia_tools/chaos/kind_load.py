"""Steady load and its bookkeeping for chaos experiments on a kind cluster, from outside it.

On a cluster the broker, the sidecars and agent-runner's ledger are not reachable from this
machine; the gateway's public API is (``AGENTIA_GATEWAY_URL``, by default kind's port
mapping, with the API key in ``AGENTIA_API_KEY``). So every figure is what a client can
see: the load and its counts are ``api_load``'s.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import httpx

from agentia.events import Status
from agentia_tools.chaos import api_load, streams
from agentia_tools.chaos.probes import record_report
from agentia_tools.kind import GATEWAY_URL, kind_key_path


class GatewayError(RuntimeError):
    """The gateway cannot be used at all (no key, refused key)."""


def api_key() -> str:
    """AGENTIA_API_KEY, else the key `agentia kind up` kept for this machine ('' if none)."""
    key = os.environ.get("AGENTIA_API_KEY", "")
    if not key and kind_key_path().exists():
        key = kind_key_path().read_text().strip()
    return key


def gateway() -> httpx.Client:
    key = api_key()
    if not key:
        raise GatewayError(
            "no API key of the cluster: run `agentia kind up` or set AGENTIA_API_KEY"
        )
    base = os.environ.get("AGENTIA_GATEWAY_URL", GATEWAY_URL).rstrip("/")
    return httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=15)


CURRENT: dict[str, api_load.ApiLoad] = {}
CURRENT_WORKFLOWS: list[str] = []
# "ended": when the fault ended (epoch; recovery is counted from there), "recovery_s"
FAULT: dict[str, float] = {}


def start_load(
    runs: int = 60,
    per_second: float = 2.0,
    agent: str = "assistant",
    text: str = "hello",
    retry_for_s: float = api_load.RETRY_FOR_S,
) -> str:
    """Start a steady load of runs through the gateway; it goes on during the next steps.
    ``retry_for_s``: how long a client retries a run the gateway does not accept (longer
    for faults that take the whole mesh down longer than that)."""
    FAULT.clear()
    load = api_load.start(gateway, runs, per_second, agent, text, retry_for_s)
    CURRENT["load"] = load
    return f"posting {runs} runs at {per_second:g}/s to the gateway (tag {load.tag})"


def gateway_serves(timeout: float = 30) -> bool:
    """The gateway answers an authenticated call that reaches agent-runner (its agents)."""
    deadline = time.monotonic() + timeout
    with gateway() as client:
        while time.monotonic() < deadline:
            try:
                resp = client.post("/agents/search", json={})
                if resp.status_code == 200:
                    return True
                if resp.status_code in (401, 403):
                    raise GatewayError(f"the gateway refuses the key: {resp.text[:200]}")
            except httpx.HTTPError:
                pass
            time.sleep(1)
    return False


def recovered(timeout: float = 240) -> str:
    """Wait until a canary run (``POST /runs/wait``, not part of the load) succeeds again;
    the time from this call (right after the fault) is the experiment's ``recovery_s``."""
    started = time.monotonic()
    FAULT["ended"] = time.time()
    with gateway() as client:
        while time.monotonic() - started < timeout:
            try:
                resp = client.post("/runs/wait", json={"input": "canary"}, timeout=20)
                if resp.status_code == 200 and resp.json()["run"]["status"] == Status.SUCCESS:
                    FAULT["recovery_s"] = round(time.monotonic() - started, 1)
                    return f"a run succeeds again {FAULT['recovery_s']}s after the fault"
            except httpx.HTTPError:
                pass
            time.sleep(1)
    raise RuntimeError(f"no canary run succeeded within {timeout:.0f}s of the fault")


def nothing_lost(experiment: str, timeout: float = 240) -> dict[str, Any]:
    """Every run the gateway accepted ended, exactly once; the figures go into the report."""
    load = CURRENT.get("load")
    if load is None:
        raise RuntimeError("no load was started in this experiment")
    result = api_load.outcome(gateway, load, timeout, faults_ended=FAULT.get("ended"))
    result["recovery_s"] = FAULT.get("recovery_s")
    result["ok"] = (
        result["lost"] == 0
        and result["duplicated"] == 0
        and result["refused"] == 0
        and result["streams_without_one_final_event"] == 0
        and result["streams_with_seq_gaps"] == 0
        and result["accepted"] == result["sent"] > 0
        and result.get("checker", {}).get("ok", True)
    )
    record_report(experiment, result)
    return result


def start_workflows(count: int = 6, pause_s: float = 3.0) -> str:
    """Start AgentLoop workflows through the gateway (two tool steps ``pause_s`` apart),
    so they are mid-flight when the next fault hits."""
    ids = [f"chaos-wf-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    messages = ['calculator {"expression": "6*7"}', 'calculator {"expression": "2+2"}']
    loop = {"agent_id": "assistant", "messages": messages, "pause_between_s": pause_s}
    with gateway() as client:
        for instance in ids:
            body = {"workflow": "AgentLoop", "instance_id": instance, "input": loop}
            client.post("/workflows", json=body).raise_for_status()
    CURRENT_WORKFLOWS[:] = ids
    return f"started {count} workflows"


def workflows_completed(experiment: str, timeout: float = 240) -> dict[str, Any]:
    """Every workflow started completed, each tool step executed once (its step record)."""
    ids = list(CURRENT_WORKFLOWS)
    deadline = time.monotonic() + timeout
    done: set[str] = set()
    repeated = 0
    with gateway() as client:
        while time.monotonic() < deadline and len(done) < len(ids):
            for instance in set(ids) - done:
                try:
                    resp = client.get(f"/workflows/{instance}")
                except httpx.HTTPError:
                    continue
                if resp.status_code == 200 and resp.json().get("status") == "COMPLETED":
                    done.add(instance)
            time.sleep(1)
        for instance in done:
            steps = client.get(f"/workflows/{instance}/steps").json()["steps"]
            repeated += sum(1 for s in steps if s["kind"] == "tool" and s["executions"] > 1)
    result = {
        "workflows": len(ids),
        "workflows_completed": len(done),
        "tool_steps_repeated": repeated,
        "ok": len(done) == len(ids) and repeated == 0,
    }
    record_report(experiment, result)
    return result


def start_streams(count: int = 6, text: str = "hello") -> str:
    """Clients that stream runs through the cluster's gateway, resuming with Last-Event-ID."""
    streams.start(count, text, gateway=gateway)
    return f"{count} streaming clients started"


def streams_complete(experiment: str, timeout: float = 240) -> dict[str, Any]:
    """Every streaming client got its run's every event exactly once, through reconnects."""
    result: dict[str, Any] = streams.outcome(timeout)
    result["ok"] = result["streams_complete"] == result["streams"]
    record_report(experiment, result)
    return result
