"""Steady load through the gateway's public API, and the bookkeeping a client can do.

Used for the kind cluster (``kind_load.py``) and for the local kill loops: every figure is
what a client of the gateway can see.

- each run goes on a thread of its own (``POST /threads/{id}/runs``, created on the fly), so
  a retried POST whose first answer was lost is found again on that thread;
- a creation attempt that is not answered 200 is a *refusal* (the client retries, up to
  ``RETRY_FOR_S`` unless the experiment says longer); a thread whose every attempt was
  refused is *refused*;
- a run is *lost* when the gateway never shows it final (``GET /threads/{t}/runs/{r}``);
- a thread is *duplicated* when it holds a message twice (its input, a tool call, an
  answer: the effect of executing it twice); the run's event stream must end with exactly
  one final event; *wedged* when its runs are all final but it still says it is busy;
- a run is *dead-lettered* when it failed because its request ran out of deliveries.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from agentia.events import FINAL, FINAL_KINDS, Status
from agentia.paths import agentia_home
from agentia_tools.chaos.checker import check
from agentia_tools.chaos.history import History, read

RETRY_FOR_S: Final = 60.0  # a client keeps trying this long
# Refusals a retry cannot fix; anything else (5xx, 429, a dropped connection) is retried.
PERMANENT: Final = {400, 401, 403, 404, 413, 422}

Gateway = Callable[[], httpx.Client]


@dataclass
class ApiLoad:
    """One experiment's load: what was sent, what the gateway accepted, and when it settled."""

    runs: int
    per_second: float
    agent: str
    text: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    accepted: dict[str, str] = field(default_factory=dict)  # thread id -> run id
    refused: dict[str, str] = field(default_factory=dict)  # thread id -> why
    refusals: list[tuple[float, str]] = field(default_factory=list)  # (when, why) per attempt
    status: dict[str, str] = field(default_factory=dict)  # run id -> last status seen
    errors: dict[str, str] = field(default_factory=dict)  # run id -> its error, if it failed
    settled_at: dict[str, float] = field(default_factory=dict)  # run id -> when it ended (epoch)
    created_at: dict[str, float] = field(default_factory=dict)  # run id -> when accepted (epoch)
    inputs: dict[str, str] = field(default_factory=dict)  # thread id -> the input it got
    retry_for_s: float = RETRY_FOR_S  # how long a client keeps trying to get a run accepted
    sent: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    history: History | None = None  # what the clients did and saw, for the offline checker

    def record(self, op: Any, process: str = "client", **fields: Any) -> None:
        if self.history is not None:
            self.history.record(op, process, **fields)

    def thread_id(self, i: int) -> str:
        return f"chaos-{self.tag}-{i:04d}"

    def input_of(self, i: int) -> str:
        """The run's input: ``{n}`` in the text is the run's number, so inputs differ."""
        return self.text.replace("{n}", str(i + 1))


def _existing_run(client: httpx.Client, thread_id: str) -> str | None:
    """The run an earlier, unanswered POST made on this thread, if it made one."""
    resp = client.get(f"/threads/{thread_id}/runs", params={"limit": 1000})
    runs = resp.json() if resp.status_code == 200 else []
    return str(runs[-1]["run_id"]) if runs else None  # newest first: the oldest is last


def _submit(client: httpx.Client, load: ApiLoad, thread_id: str, text: str) -> None:
    body = {
        "agent_id": load.agent,
        "input": text,
        "if_not_exists": "create",
        "stream_mode": ["events"],
        "metadata": {"chaos": load.tag},
    }
    load.inputs[thread_id] = text
    load.record("requested", key=thread_id)
    deadline = time.monotonic() + load.retry_for_s
    reason, definite = "not tried", False
    while time.monotonic() < deadline:
        try:
            resp = client.post(f"/threads/{thread_id}/runs", json=body)
            found = resp.json()["run_id"] if resp.status_code == 200 else None
            if resp.status_code == 409:  # busy: an earlier attempt got in after all
                found = _existing_run(client, thread_id)
            if found:
                load.accepted[thread_id] = found
                load.created_at[found] = time.time()
                load.record("accepted", key=thread_id, run=found)
                return
            reason = f"{resp.status_code} {resp.text[:400]}"
            load.refusals.append((time.monotonic(), reason))
            if resp.status_code in PERMANENT:
                definite = True
                break
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
            load.refusals.append((time.monotonic(), reason))
        time.sleep(0.5)
    load.refused[thread_id] = reason
    load.record("refused", key=thread_id, why=reason, definite=definite)


def _publish_all(gateway: Gateway, load: ApiLoad) -> None:
    with gateway() as client:
        for i in range(load.runs):
            load.sent += 1
            _submit(client, load, load.thread_id(i), load.input_of(i))
            time.sleep(1 / load.per_second)
    load.done.set()


def _watch(gateway: Gateway, load: ApiLoad) -> None:
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
                    run = resp.json()
                    if run["status"] != load.status.get(run_id):
                        load.record(
                            "observed", "watcher", run=run_id, status=run["status"], via="api"
                        )
                    load.status[run_id] = run["status"]
                    if run["status"] in FINAL:
                        # When this client saw it settled (at most a poll late): not the
                        # gateway's updated_at, whose clock a clock-fault experiment moves.
                        load.settled_at[run_id] = time.time()
                        if run.get("error"):
                            load.errors[run_id] = str(run["error"])
                elif resp.status_code == 404:
                    load.status[run_id] = "missing"
            time.sleep(1)


def start(
    gateway: Gateway,
    runs: int,
    per_second: float,
    agent: str,
    text: str,
    retry_for_s: float = RETRY_FOR_S,
) -> ApiLoad:
    """Start the load's publisher and watcher threads; they go on during the next steps."""
    gateway().close()  # no key, no gateway: fail here, before any fault is injected
    load = ApiLoad(runs, per_second, agent, text, retry_for_s=retry_for_s)
    load.history = History(agentia_home() / "chaos" / "history" / f"api-{load.tag}.jsonl")
    threading.Thread(target=_publish_all, args=(gateway, load), daemon=True).start()
    threading.Thread(target=_watch, args=(gateway, load), daemon=True).start()
    return load


def seq_gaps(seqs: list[int]) -> int:
    """How many of a run's events are missing or repeated: its events, in the order a stream
    sent them, must be 0, 1, 2, … each once."""
    return len(set(range(max(seqs, default=-1) + 1)) ^ set(seqs)) + len(seqs) - len(set(seqs))


def _replayed(client: httpx.Client, thread_id: str, run_id: str) -> tuple[int, list[int]]:
    """The run's stream, replayed from its log: distinct final events (by seq), and the
    events' seqs in the order the stream sent them. A refusal a retry can fix (429 over the
    key's rate, a 5xx), or a stream cut off (the gateway's sidecar restarted under it), is
    read again for up to ``RETRY_FOR_S``."""
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            return _replayed_once(client, thread_id, run_id, deadline)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _replayed_once(
    client: httpx.Client, thread_id: str, run_id: str, deadline: float
) -> tuple[int, list[int]]:
    while True:
        finals: set[int] = set()
        seqs: list[int] = []
        event = ""
        url = f"/threads/{thread_id}/runs/{run_id}/stream"
        with client.stream("GET", url, timeout=30) as resp:
            if resp.status_code == 429 or resp.status_code >= 500:
                if time.monotonic() < deadline:
                    time.sleep(min(float(resp.headers.get("retry-after") or 1), 5.0))
                    continue
                return 0, []
            if resp.status_code != 200:
                return 0, []
            for line in resp.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "events":
                    data = json.loads(line[6:])
                    seqs.append(int(data.get("seq", -1)))
                    if data.get("kind") in FINAL_KINDS:
                        finals.add(int(data.get("seq", -1)))
        return len(finals), seqs


def _read(client: httpx.Client, path: str, **params: Any) -> Any:
    """GET ``path`` as a patient client would: the mesh may still be recovering from the
    faults (a sidecar the watchdog restarts), so retry for up to ``RETRY_FOR_S``."""
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            resp = client.get(path, params=params or None)
            if resp.status_code == 200 or resp.status_code in PERMANENT:
                resp.raise_for_status()
                return resp.json()
            why = f"{resp.status_code} {resp.text[:400]}"
        except httpx.TransportError as exc:
            why = type(exc).__name__
        if time.monotonic() > deadline:
            raise RuntimeError(f"GET {path}: still failing after {RETRY_FOR_S:.0f}s: {why}")
        time.sleep(1)


def _thread_check(client: httpx.Client, thread_id: str, text: str) -> dict[str, int]:
    """What the thread holds: its runs, its input's copies, repeated messages, and whether
    it still says it is busy."""
    runs = _read(client, f"/threads/{thread_id}/runs", limit=1000)
    messages = _read(client, f"/threads/{thread_id}/state")["values"]["messages"]
    keys = [
        (m.get("role"), str(m.get("content")), json.dumps(m.get("tool_calls"), sort_keys=True))
        for m in messages
    ]
    thread = _read(client, f"/threads/{thread_id}")
    return {
        "runs": len(runs),
        "inputs": sum(1 for m in messages if m.get("role") == "user" and m["content"] == text),
        "repeated": len(keys) - len(set(keys)),
        "busy": int(thread.get("status") == "busy"),
    }


def outcome(
    gateway: Gateway, load: ApiLoad, timeout: float, faults_ended: float | None = None
) -> dict[str, Any]:
    """Wait until every accepted run is final (or ``timeout``), then count. ``faults_ended``
    (epoch seconds): when the last fault was injected, to say how long runs took after it."""
    load.done.wait(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(load.settled_at) < len(load.accepted):
        time.sleep(1)
    load.stop.set()
    completed = [(t, r) for t, r in load.accepted.items() if load.status.get(r) == Status.SUCCESS]
    duplicated = resubmitted = bad_streams = gapped = repeated = wedged = 0
    with gateway() as client:
        for thread_id, run_id in load.accepted.items():
            found = _thread_check(client, thread_id, load.inputs[thread_id])
            resubmitted += found["runs"] - 1
            duplicated += int(found["inputs"] > found["runs"])
            repeated += int(found["repeated"] > 0)
            wedged += int(found["busy"] and load.status.get(run_id) in FINAL)
        for thread_id, run_id in completed:
            finals, seqs = _replayed(client, thread_id, run_id)
            load.record("seqs", "replay", run=run_id, seqs=seqs)
            bad_streams += int(finals != 1)
            gapped += int(seq_gaps(seqs) > 0)
    statuses = [load.status.get(r, "unseen") for r in load.accepted.values()]
    # How long each run took to end once both it existed and the faults were over.
    after = {
        r: t - max(faults_ended, load.created_at.get(r, 0.0))
        for r, t in load.settled_at.items()
        if faults_ended is not None
    }
    slowest = sorted(after.items(), key=lambda kv: -kv[1])[:5]
    checked: dict[str, Any] = {}
    if load.history is not None:
        load.history.close()
        checked = {"checker": check(read(load.history.path)).summary()}
        checked["history"] = str(load.history.path)
    return {
        "load": f"{load.runs} runs at {load.per_second:g}/s ({load.agent})",
        "sent": load.sent,
        "accepted": len(load.accepted),
        "refused": len(load.refused),
        "refused_attempts": len(load.refusals),
        "refusal_reasons": sorted({why for _, why in load.refusals})[:5],
        "completed": len(completed),
        "failed": sum(1 for s in statuses if s in FINAL - {Status.SUCCESS}),
        "dead_lettered": sum(1 for e in load.errors.values() if "dead-lettered" in e),
        "lost": sum(1 for s in statuses if s not in FINAL),
        "duplicated": duplicated,
        "threads_with_repeated_messages": repeated,
        "wedged_threads": wedged,
        "resubmitted": resubmitted,
        "streams_without_one_final_event": bad_streams,
        "streams_with_seq_gaps": gapped,
        "final_s_after_faults": round(max(after.values()), 1) if after else None,
        "slowest_runs": [{"run_id": r, "s": round(t, 1)} for r, t in slowest],
        **checked,
    }
