"""Steady load for chaos experiments, and the bookkeeping that proves nothing was lost.

A publisher thread sends ``runs.requested`` at a steady rate through the gateway's sidecar;
a watcher reads ``runs.events`` straight from its own durable RabbitMQ queue and counts the
distinct ``run.completed`` events per run. At the end every accepted run must be finished
in agent-runner's ledger (none lost) and completed exactly once (no duplicated effect).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import pika

from agentia import names
from agentia.contracts import runner as runner_api
from agentia.events import RUNNER_FINAL, Kind, Status
from agentia.paths import agentia_home
from agentia_tools.chaos.checker import check
from agentia_tools.chaos.history import History, read
from agentia_tools.runtime import infra
from agentia_tools.runtime.secrets_file import read_secrets


@dataclass
class Load:
    """One experiment's load: what was sent, accepted, and seen completing."""

    runs: int
    per_second: float
    agent: str
    text: str
    sent: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    completions: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    fault_at: float | None = None
    recovery_s: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    stop_watch: threading.Event = field(default_factory=threading.Event)
    stop_publish: threading.Event = field(default_factory=threading.Event)  # no new run after
    # Paced on the clock (a publish's own time is not added to the gap; time lost to an
    # outage is not made up in a burst): a soak's background. Experiments keep the plain
    # gap their fault timings were set against.
    paced: bool = False
    queue: str = field(default_factory=lambda: f"chaos-watch-{uuid.uuid4().hex[:8]}")
    history: History | None = None  # what the load did and saw, for the offline checker

    @property
    def prefix(self) -> str:
        """Every run id of this load starts with it."""
        return f"chaos-{self.queue[-8:]}-"

    def record(self, op: Any, **fields: Any) -> None:
        if self.history is not None:
            self.history.record(op, "load", **fields)


CURRENT: dict[str, Load] = {}
UNREACHABLE = "unreachable"  # a ledger read that failed: no answer about the run
CURRENT_POISON: list[str] = []  # run ids published to fail on every delivery
CURRENT_WORKFLOWS: list[str] = []  # workflow instances started by the experiment
WORKFLOW_HISTORY: dict[str, History] = {}


def workflow_history() -> History:
    """The history of the experiment's workflows (started, read, steps executed)."""
    if "history" not in WORKFLOW_HISTORY:
        tag = uuid.uuid4().hex[:8]
        path = agentia_home() / "chaos" / "history" / f"workflows-{tag}.jsonl"
        WORKFLOW_HISTORY["history"] = History(path)
    return WORKFLOW_HISTORY["history"]


def sidecar() -> tuple[str, dict[str, str]]:
    token = read_secrets(agentia_home())[names.SECRET_DAPR_API_TOKEN]
    port = names.PORTS[names.GATEWAY].dapr_http
    return f"http://127.0.0.1:{port}", {"dapr-api-token": token}


def _publish_all(load: Load) -> None:
    base, headers = sidecar()
    gap = 1 / load.per_second
    next_at = time.monotonic()
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        for i in range(load.runs):
            if load.stop_publish.is_set():
                break
            run_id = f"{load.prefix}{i:04d}"
            load.sent.append(run_id)
            load.record("requested", key=run_id)
            body = {"run_id": run_id, "agent_id": load.agent, "input": load.text}
            deadline = time.monotonic() + 60  # a publisher keeps trying, like a real client
            while True:
                try:
                    resp = client.post(
                        f"/v1.0/publish/pubsub/{names.TOPIC_RUNS_REQUESTED}", json=body
                    )
                    if resp.status_code == 204:
                        load.accepted.append(run_id)
                        load.record("accepted", key=run_id, run=run_id)
                        break
                    reason = f"{resp.status_code} {resp.text[:400]}"
                except httpx.HTTPError as exc:
                    reason = type(exc).__name__
                if time.monotonic() > deadline:
                    load.refused[run_id] = reason
                    # A refusal after a timeout may still have reached the broker.
                    load.record("refused", key=run_id, why=reason, definite=False)
                    break
                time.sleep(0.5)
            if load.paced:
                next_at = max(next_at + gap, time.monotonic())
                time.sleep(max(0.0, next_at - time.monotonic()))
            else:
                time.sleep(gap)
    load.done.set()


def _watch(load: Load) -> None:
    creds = infra.load_or_create_credentials(
        agentia_home(), infra.InfraSettings.from_env(), create=False
    )
    while not load.stop_watch.is_set():
        try:
            params = pika.URLParameters(creds.rabbitmq_url)
            params.heartbeat = 10
            conn = pika.BlockingConnection(params)
            ch = conn.channel()
            ch.exchange_declare(names.TOPIC_RUNS_EVENTS, "fanout", durable=True)
            ch.queue_declare(load.queue, durable=True)
            ch.queue_bind(load.queue, names.TOPIC_RUNS_EVENTS)
            while not load.stop_watch.is_set():
                method, _props, body = ch.basic_get(load.queue)
                if method is None:
                    time.sleep(0.05)
                    continue
                envelope = json.loads(body)
                data = envelope.get("data") or {}
                run_id = str(data.get("run_id", ""))
                if data.get("kind") == Kind.RUN_COMPLETED and run_id.startswith(load.prefix):
                    load.completions[run_id].add(envelope.get("id", ""))
                    load.record("completed", run=run_id, event_id=envelope.get("id", ""))
                ch.basic_ack(method.delivery_tag)
            ch.queue_delete(load.queue)
            conn.close()
        except Exception:  # the broker may be the fault under test: reconnect
            time.sleep(1)


def start(
    runs: int,
    per_second: float,
    agent: str = "assistant",
    text: str = "hello",
    experiment: bool = True,
) -> Load:
    """Start publishing and watching; ``experiment``: this is the running experiment's load
    (its probes find it), not a soak's background load (paced on the clock)."""
    load = Load(runs=runs, per_second=per_second, agent=agent, text=text, paced=not experiment)
    load.history = History(agentia_home() / "chaos" / "history" / f"{load.queue}.jsonl")
    if experiment:
        CURRENT["load"] = load
    threading.Thread(target=_watch, args=(load,), daemon=True).start()
    time.sleep(1)  # the watcher's queue exists before the first run can complete
    threading.Thread(target=_publish_all, args=(load,), daemon=True).start()
    return load


def ledger_status(run_ids: list[str]) -> dict[str, str]:
    base, headers = sidecar()
    out: dict[str, str] = {}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        for rid in run_ids:
            try:
                r = client.get(
                    f"/v1.0/invoke/{names.AGENT_RUNNER}/method/{runner_api.run_path(rid)}"
                )
                if r.status_code == 200:
                    out[rid] = r.json().get("status", "missing")
                else:  # not found, or a read that failed (not an answer about the run)
                    out[rid] = "missing" if r.status_code == 404 else UNREACHABLE
            except httpx.HTTPError:
                out[rid] = UNREACHABLE
    return out


def outcome(load: Load, timeout: float) -> dict[str, Any]:
    """Wait for the load to finish, then count lost and duplicated runs."""
    load.done.wait(timeout)
    deadline = time.monotonic() + timeout
    status: dict[str, str] = {}
    while time.monotonic() < deadline:
        before, status = status, ledger_status(load.accepted)
        for rid, now in status.items():
            # Each change of what the ledger says goes on record; a failed read says nothing.
            if now != before.get(rid) and now != UNREACHABLE:
                load.record("observed", run=rid, status=now, via="ledger")
        done = all(s in RUNNER_FINAL for s in status.values())
        seen = all(load.completions.get(r) for r, s in status.items() if s == Status.SUCCESS)
        if done and seen:
            break
        time.sleep(1)
    load.stop_watch.set()
    completed = [r for r, s in status.items() if s == Status.SUCCESS]
    checked: dict[str, Any] = {}
    if load.history is not None:
        load.history.close()
        checked = {"checker": check(read(load.history.path)).summary()}
        checked["history"] = str(load.history.path)
    return {
        "load": f"{load.runs} runs at {load.per_second:g}/s ({load.agent})",
        "sent": len(load.sent),
        "accepted": len(load.accepted),
        "refused": len(load.refused),
        "completed": len(completed),
        "failed": sum(1 for s in status.values() if s in RUNNER_FINAL - {Status.SUCCESS}),
        "lost": sum(1 for s in status.values() if s not in RUNNER_FINAL),
        # Named in the report (not only counted), with what the ledger said of each.
        "lost_runs": {r: s for r, s in sorted(status.items()) if s not in RUNNER_FINAL},
        "duplicated": sum(1 for r in load.accepted if len(load.completions.get(r, ())) > 1),
        "recovery_s": load.recovery_s,
        **checked,
    }
