"""Chaos Toolkit probes on the local mesh (``"module": "agentia_tools.chaos.probes"``)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from agentia import names
from agentia.contracts import runner as runner_api
from agentia.events import Status
from agentia.paths import agentia_home
from agentia_tools.chaos import actions, api_load, injected
from agentia_tools.chaos import load as load_mod
from agentia_tools.chaos import streams as streams_mod
from agentia_tools.chaos.checker import check
from agentia_tools.chaos.history import read
from agentia_tools.runtime import health


def record_report(experiment: str, result: dict[str, Any]) -> None:
    """Merge a probe's figures into ``$AGENTIA_HOME/chaos/<experiment>.json`` (the runner
    deletes it before each run); ``ok`` there is the AND of every probe's verdict."""
    out = agentia_home() / "chaos" / f"{experiment}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else {}
    verdict = bool(previous.get("ok", True)) and bool(result["ok"])
    faults = injected.total()
    out.write_text(json.dumps({**previous, **result, "faults": faults, "ok": verdict}, indent=1))


def mesh_healthy(experiment: str | None = None, timeout: float = 120) -> bool:
    """Every app, sidecar and control-plane process answers its health check, waited for up
    to ``timeout`` (after a fault the mesh may still be coming back: never a single probe);
    with ``experiment``, how long it took goes into its report (``healthy_after_s``)."""
    start = time.monotonic()
    while True:
        healthy = all(p.ok for p in health.mesh_probes())
        if healthy or time.monotonic() - start > timeout:
            break
        time.sleep(1)
    if experiment is not None:
        took = round(time.monotonic() - start, 1)
        record_report(experiment, {"healthy_after_s": took, "ok": healthy})
    return healthy


def nothing_lost(experiment: str, timeout: float = 180) -> dict[str, Any]:
    """Wait for the load to finish; report sent/accepted/completed/lost/duplicated runs.

    The report also goes to ``$AGENTIA_HOME/chaos/<experiment>.json``; ``ok`` is the verdict.
    """
    load = load_mod.CURRENT.get("load")
    if load is None:
        raise RuntimeError("no load was started in this experiment")
    result = load_mod.outcome(load, timeout)
    result["ok"] = (
        result["lost"] == 0
        and result["duplicated"] == 0
        and result["refused"] == 0
        and result.get("checker", {}).get("ok", True)
    )
    record_report(experiment, result)
    return result


def clients_saw_nothing_lost(
    experiment: str, timeout: float = 300, final_within_s: float = 180
) -> dict[str, Any]:
    """After a loop of faults under load through the gateway: every run the gateway was asked
    for was accepted (no creation refused) and ended ``success`` within ``final_within_s``
    of the last fault, once (no thread holds a message twice, every stream one final event),
    none dead-lettered, no thread left busy."""
    load = actions.API_LOAD.get("load")
    if load is None:
        raise RuntimeError("no API load was started in this experiment")
    result = api_load.outcome(actions.local_gateway, load, timeout, actions.FAULTS.get("ended"))
    late = result["final_s_after_faults"]
    result["final_within_s"] = final_within_s
    result["ok"] = (
        result["accepted"] == result["sent"] > 0
        and result["refused_attempts"] == 0
        and result["completed"] == result["accepted"]
        and result["lost"] == 0
        and result["duplicated"] == 0
        and result["threads_with_repeated_messages"] == 0
        and result["wedged_threads"] == 0
        and result["dead_lettered"] == 0
        and result["streams_without_one_final_event"] == 0
        and result["streams_with_seq_gaps"] == 0
        and (late is None or late <= final_within_s)
        and result.get("checker", {}).get("ok", True)
    )
    record_report(experiment, result)
    return result


def poison_dead_lettered(experiment: str, timeout: float = 120) -> dict[str, Any]:
    """Every poison run request ended failed as dead-lettered (kept, not lost, not retried
    forever); the count goes into the experiment's report."""
    ids = list(load_mod.CURRENT_POISON)
    base, headers = load_mod.sidecar()
    deadline = time.monotonic() + timeout
    done: set[str] = set()
    while time.monotonic() < deadline and len(done) < len(ids):
        for run_id in set(ids) - done:
            resp = httpx.get(
                f"{base}/v1.0/invoke/{names.AGENT_RUNNER}/method/{runner_api.run_path(run_id)}",
                headers=headers,
                timeout=10,
            )
            body = resp.json() if resp.status_code == 200 else {}
            if body.get("status") == Status.ERROR and "dead-lettered" in str(body.get("error")):
                done.add(run_id)
        time.sleep(1)
    result = {"poison": len(ids), "dead_lettered": len(done), "ok": len(done) == len(ids)}
    record_report(experiment, result)
    return result


def workflows_completed(experiment: str, timeout: float = 180) -> dict[str, Any]:
    """Every workflow the experiment started completed, each tool step run once."""
    ids = list(load_mod.CURRENT_WORKFLOWS)
    base, headers = load_mod.sidecar()
    url = f"{base}/v1.0/invoke/{names.AGENT_RUNNER}/method/internal/workflows"
    deadline = time.monotonic() + timeout
    done: set[str] = set()
    history = load_mod.workflow_history()
    seen: dict[str, str] = {}
    while time.monotonic() < deadline and len(done) < len(ids):
        for instance in set(ids) - done:
            resp = httpx.get(f"{url}/{instance}", headers=headers, timeout=10)
            status = str(resp.json().get("status")) if resp.status_code == 200 else None
            if status is not None and status != seen.get(instance):
                seen[instance] = status
                history.record("workflow_observed", "probe", instance=instance, status=status)
            if status == "COMPLETED":
                done.add(instance)
        time.sleep(1)
    repeated = 0
    for instance in done:
        steps = httpx.get(f"{url}/{instance}/steps", headers=headers, timeout=10).json()
        for step in steps["steps"]:
            if step["kind"] != "tool":
                continue
            repeated += int(step["executions"] > 1)
            for n in range(int(step["executions"])):  # each execution is the step's effect
                key = f"{instance}:{step['step']}"
                history.record("effect", "probe", run=instance, effect_key=key, event_id=str(n))
    history.close()
    load_mod.WORKFLOW_HISTORY.clear()
    verdict = check(read(history.path)).summary()
    result = {
        "workflows": len(ids),
        "workflows_completed": len(done),
        "tool_steps_repeated": repeated,
        "workflow_checker": verdict,
        "workflow_history": str(history.path),
        "ok": 0 < len(done) == len(ids) and repeated == 0 and verdict["ok"],
    }
    record_report(experiment, result)
    return result


def streams_complete(experiment: str, timeout: float = 180) -> dict[str, Any]:
    """Every streaming client got its run's every event exactly once, through reconnects."""
    result: dict[str, Any] = streams_mod.outcome(timeout)
    result["ok"] = result["streams_complete"] == result["streams"]
    record_report(experiment, result)
    return result
