"""Steady load and its bookkeeping for chaos experiments on a kind cluster, from outside it.

On a cluster the broker, the sidecars and agent-runner's ledger are not reachable from this
machine; the gateway's public API is (``AGENTIA_GATEWAY_URL``, by default kind's port
mapping, with the API key in ``AGENTIA_API_KEY``). So every figure here is what a client
can see:

- each run of the load goes on a thread of its own (``POST /threads/{id}/runs``, created on
  the fly), so a retried POST whose first answer was lost is found again on that thread;
- a run is *lost* when the gateway never shows it final (``GET /threads/{t}/runs/{r}``);
- a run is *duplicated* when its thread holds its input more than once per run on the
  thread (the effect of executing it twice); the run's event stream must end with exactly
  one final event; runs a retried POST created twice are counted apart (``resubmitted``).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from agentia.chaos.probes import _record
from agentia.kind import GATEWAY_URL, kind_key_path

FINAL: Final = {"success", "error", "interrupted", "timeout"}  # the gateway's final statuses
FINAL_KINDS: Final = {"run.completed", "run.failed", "run.cancelled"}
RETRY_FOR_S: Final = 60.0  # a client keeps trying this long, like the local publisher
# Refusals a retry cannot fix; anything else (5xx, 429, a dropped connection) is retried.
PERMANENT: Final = {400, 401, 403, 404, 413, 422}


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


@dataclass
class KindLoad:
    """One experiment's load: what was sent, what the gateway accepted, and when it settled."""

    runs: int
    per_second: float
    agent: str
    text: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    accepted: dict[str, str] = field(default_factory=dict)  # thread id -> run id
    refused: dict[str, str] = field(default_factory=dict)  # thread id -> why
    status: dict[str, str] = field(default_factory=dict)  # run id -> last status seen
    settled_at: dict[str, float] = field(default_factory=dict)  # run id -> when seen final
    created_at: dict[str, float] = field(default_factory=dict)  # run id -> when accepted
    sent: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def thread_id(self, i: int) -> str:
        return f"chaos-{self.tag}-{i:04d}"


CURRENT: dict[str, KindLoad] = {}
CURRENT_WORKFLOWS: list[str] = []
FAULT: dict[str, float] = {}  # "at": when the fault ended (recovery is counted from there)


def _existing_run(client: httpx.Client, thread_id: str) -> str | None:
    """The run an earlier, unanswered POST made on this thread, if it made one."""
    resp = client.get(f"/threads/{thread_id}/runs", params={"limit": 1000})
    runs = resp.json() if resp.status_code == 200 else []
    return str(runs[-1]["run_id"]) if runs else None  # newest first: the oldest is last


def _submit(client: httpx.Client, load: KindLoad, thread_id: str) -> None:
    body = {
        "agent_id": load.agent,
        "input": load.text,
        "if_not_exists": "create",
        "stream_mode": ["events"],
        "metadata": {"chaos": load.tag},
    }
    deadline = time.monotonic() + RETRY_FOR_S
    reason = "not tried"
    while time.monotonic() < deadline:
        try:
            resp = client.post(f"/threads/{thread_id}/runs", json=body)
            if resp.status_code == 200:
                load.accepted[thread_id] = resp.json()["run_id"]
                load.created_at[load.accepted[thread_id]] = time.monotonic()
                return
            if resp.status_code == 409:  # busy: an earlier attempt got in after all
                found = _existing_run(client, thread_id)
                if found:
                    load.accepted[thread_id] = found
                    load.created_at[found] = time.monotonic()
                    return
            reason = f"{resp.status_code} {resp.text[:100]}"
            if resp.status_code in PERMANENT:
                break
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
        time.sleep(0.5)
    load.refused[thread_id] = reason


def _publish_all(load: KindLoad) -> None:
    with gateway() as client:
        for i in range(load.runs):
            load.sent += 1
            _submit(client, load, load.thread_id(i))
            time.sleep(1 / load.per_second)
    load.done.set()


def _watch(load: KindLoad) -> None:
    """Poll every unsettled run's status about once a second, noting when it settles."""
    with gateway() as client:
        while not load.stop.is_set():
            for thread_id, run_id in list(load.accepted.items()):
                if run_id in load.settled_at:
                    continue
                try:
                    resp = client.get(f"/threads/{thread_id}/runs/{run_id}")
                except httpx.HTTPError:
                    continue  # the gateway may be the fault under test
                if resp.status_code == 200:
                    load.status[run_id] = resp.json()["status"]
                    if load.status[run_id] in FINAL:
                        load.settled_at[run_id] = time.monotonic()
                elif resp.status_code == 404:
                    load.status[run_id] = "missing"
            time.sleep(1)


def start_load(
    runs: int = 60, per_second: float = 2.0, agent: str = "assistant", text: str = "hello"
) -> str:
    """Start a steady load of runs through the gateway; it goes on during the next steps."""
    gateway().close()  # no key: fail here, before any fault is injected
    load = KindLoad(runs=runs, per_second=per_second, agent=agent, text=text)
    CURRENT["load"] = load
    FAULT.clear()
    threading.Thread(target=_publish_all, args=(load,), daemon=True).start()
    threading.Thread(target=_watch, args=(load,), daemon=True).start()
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
    FAULT["at"] = started
    with gateway() as client:
        while time.monotonic() - started < timeout:
            try:
                resp = client.post("/runs/wait", json={"input": "canary"}, timeout=20)
                if resp.status_code == 200 and resp.json()["run"]["status"] == "success":
                    FAULT["recovery_s"] = round(time.monotonic() - started, 1)
                    return f"a run succeeds again {FAULT['recovery_s']}s after the fault"
            except httpx.HTTPError:
                pass
            time.sleep(1)
    raise RuntimeError(f"no canary run succeeded within {timeout:.0f}s of the fault")


def _final_events(client: httpx.Client, thread_id: str, run_id: str) -> int:
    """Distinct final events (by seq) on the run's stream, replayed from its log."""
    seen: set[str] = set()
    event = ""
    with client.stream("GET", f"/threads/{thread_id}/runs/{run_id}/stream", timeout=30) as resp:
        if resp.status_code != 200:
            return 0
        for line in resp.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "events":
                data = json.loads(line[6:])
                if data.get("kind") in FINAL_KINDS:
                    seen.add(str(data.get("seq")))
    return len(seen)


def _effects(client: httpx.Client, thread_id: str, text: str) -> tuple[int, int]:
    """(runs on the thread, times the load's input is in the thread's messages)."""
    runs = client.get(f"/threads/{thread_id}/runs", params={"limit": 1000}).json()
    state = client.get(f"/threads/{thread_id}/state").json()
    inputs = sum(
        1 for m in state["messages"] if m.get("role") == "user" and m.get("content") == text
    )
    return len(runs), inputs


def outcome(load: KindLoad, timeout: float) -> dict[str, Any]:
    """Wait until every accepted run is final (or ``timeout``), then count."""
    load.done.wait(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(load.settled_at) < len(load.accepted):
        time.sleep(1)
    load.stop.set()
    completed = [(t, r) for t, r in load.accepted.items() if load.status.get(r) == "success"]
    duplicated = resubmitted = bad_streams = 0
    with gateway() as client:
        for thread_id, run_id in completed:
            runs_on_thread, inputs = _effects(client, thread_id, load.text)
            resubmitted += runs_on_thread - 1
            duplicated += int(inputs > runs_on_thread)
            bad_streams += int(_final_events(client, thread_id, run_id) != 1)
    statuses = [load.status.get(r, "unseen") for r in load.accepted.values()]
    return {
        "load": f"{load.runs} runs at {load.per_second:g}/s ({load.agent})",
        "sent": load.sent,
        "accepted": len(load.accepted),
        "refused": len(load.refused),
        "completed": len(completed),
        "failed": sum(1 for s in statuses if s in FINAL - {"success"}),
        "lost": sum(1 for s in statuses if s not in FINAL),
        "duplicated": duplicated,
        "resubmitted": resubmitted,
        "streams_without_one_final_event": bad_streams,
        "recovery_s": FAULT.get("recovery_s"),
    }


def nothing_lost(experiment: str, timeout: float = 240) -> dict[str, Any]:
    """Every run the gateway accepted ended, exactly once; the figures go into the report."""
    load = CURRENT.get("load")
    if load is None:
        raise RuntimeError("no load was started in this experiment")
    result = outcome(load, timeout)
    result["ok"] = (
        result["lost"] == 0
        and result["duplicated"] == 0
        and result["refused"] == 0
        and result["streams_without_one_final_event"] == 0
        and result["accepted"] == result["sent"] > 0
    )
    _record(experiment, result)
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
    _record(experiment, result)
    return result
