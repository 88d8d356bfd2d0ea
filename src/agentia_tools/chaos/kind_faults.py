"""Faults only a cluster has, as chaostoolkit actions: a worker node lost (its kind container
stopped, then started again), a node drained, a rolling update under load, the broker moved
to the other worker with its volume.

They drive ``kubectl`` (the kind context only, always named) and ``docker`` (only the kind
node containers of this project's cluster). Every wait is bounded; each action returns when
its fault has ended, so the ``recovered`` probe after it counts recovery from there.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any, Final

from agentia_tools.chaos import injected
from agentia_tools.kind_render import NAMESPACE
from agentia_tools.kind_up import CLUSTER, CONTEXT

KIND_CLUSTER_LABEL: Final = "io.x-k8s.kind.cluster"  # on every node container kind makes
NODE_READY_S: Final = 240.0  # a restarted kind node is Ready again well within this


class FaultError(RuntimeError):
    """A fault could not be injected or undone; the message says which step."""


def _run(cmd: list[str], timeout: float = 120) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise FaultError(f"`{' '.join(cmd[:5])} …` failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def kubectl(*args: str, timeout: float = 120) -> str:
    return _run(["kubectl", "--context", CONTEXT, *args], timeout=timeout)


def _pods(selector: str, ns: str = NAMESPACE) -> list[dict[str, Any]]:
    out = kubectl("-n", ns, "get", "pods", "-l", selector, "-o", "json")
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def node_of(app: str, ns: str = NAMESPACE) -> str:
    """The node running a pod of ``app`` (app.kubernetes.io/name); refused if none runs."""
    for pod in _pods(f"app.kubernetes.io/name={app}", ns):
        node = pod["spec"].get("nodeName")
        if node and pod["status"].get("phase") == "Running":
            return str(node)
    raise FaultError(f"no running pod of '{app}' in namespace {ns}")


def _own_worker(node: str) -> str:
    """``node`` itself, once Docker shows it to be a worker container of this project's kind
    cluster (kind's own labels): the control plane holds the API server and the gateway's
    port, so it is never the target, and nothing else on the machine is either."""
    fmt = '{{.Names}} {{.Label "io.x-k8s.kind.role"}}'
    out = _run(
        ["docker", "ps", "-a", "--filter", f"label={KIND_CLUSTER_LABEL}={CLUSTER}", "--format", fmt]
    )
    roles = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    if node not in roles:
        raise FaultError(f"'{node}' is not a node of the kind cluster '{CLUSTER}'")
    if roles[node] != "worker":
        raise FaultError(f"'{node}' is the {roles[node]}; only workers are stopped")
    return node


def _wait_ready(node: str, timeout: float = NODE_READY_S) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            out = kubectl("get", "node", node, "-o", "json", timeout=20)
            conditions = json.loads(out)["status"].get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return time.monotonic() - started
        except (FaultError, subprocess.TimeoutExpired):
            pass
        time.sleep(2)
    raise FaultError(f"node {node} was not Ready within {timeout:.0f}s of its restart")


def _address(node: str) -> str:
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    return _run(["docker", "inspect", "-f", fmt, node]).strip()


def lose_worker(app: str = "agent-runner", down_s: float = 45.0) -> str:
    """Stop the kind container of the worker running ``app`` (every process on that node dies
    at once, its network gone), keep it down ``down_s``, start it again, wait until Ready."""
    node = _own_worker(node_of(app))
    before = _address(node)
    _run(["docker", "stop", "--time", "0", node])
    time.sleep(max(0.0, min(down_s, 300.0)))
    _run(["docker", "start", node])
    ready_s = _wait_ready(node)
    after = _address(node)
    moved = f"; its address changed {before} → {after}" if before != after else ""
    injected.fault()
    return f"worker {node} (running {app}) down {down_s:g}s, Ready {ready_s:.0f}s later{moved}"


def _held_by_budgets(node: str) -> list[str]:
    """The pods still on ``node`` (DaemonSets' aside), if every one of them is one a
    PodDisruptionBudget protects; empty if any is not (the drain failed for another reason)."""
    out = kubectl("get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "json")
    left = [
        p
        for p in json.loads(out)["items"]
        if not any(o.get("kind") == "DaemonSet" for o in p["metadata"].get("ownerReferences", []))
        and p["status"].get("phase") not in ("Succeeded", "Failed")
    ]
    budgets = json.loads(kubectl("get", "pdb", "-A", "-o", "json"))["items"]

    def protected(pod: dict[str, Any]) -> bool:
        labels = pod["metadata"].get("labels", {})
        return any(
            b["metadata"]["namespace"] == pod["metadata"]["namespace"]
            and b["spec"].get("selector", {}).get("matchLabels", {}).items() <= labels.items()
            for b in budgets
        )

    if not left or not all(protected(p) for p in left):
        return []
    return sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in left)


def drain_worker(app: str = "agent-runner", hold_s: float = 30.0) -> str:
    """Drain the worker running ``app`` (its pods evicted, gracefully), hold it cordoned
    ``hold_s``, then uncordon it. Pods whose volume is bound to that node wait for it. A pod
    its PodDisruptionBudget keeps (Dapr's scheduler: 2 of its 3 replicas on one of two
    workers, their volumes on it) stays, as it would for any operator's drain."""
    node = _own_worker(node_of(app))
    kept = ""
    try:
        try:
            kubectl(
                "drain",
                node,
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--force",
                "--grace-period=30",
                "--timeout=120s",
                timeout=180,
            )
        except FaultError:
            held = _held_by_budgets(node)
            if not held:
                raise
            kept = f"; kept by their PodDisruptionBudgets: {', '.join(held)}"
        time.sleep(max(0.0, min(hold_s, 300.0)))
    finally:
        kubectl("uncordon", node)
    injected.fault()
    return f"worker {node} (running {app}) drained, uncordoned after {hold_s:g}s{kept}"


def rolling_update(name: str = "agent-runner", timeout: float = 300.0) -> str:
    """Roll every pod of a Deployment (what a new image does) and wait for the rollout."""
    started = time.monotonic()
    kubectl("-n", NAMESPACE, "rollout", "restart", f"deployment/{name}")
    kubectl(
        "-n",
        NAMESPACE,
        "rollout",
        "status",
        f"deployment/{name}",
        f"--timeout={int(timeout)}s",
        timeout=timeout + 30,
    )
    injected.fault()
    return f"deployment {name} rolled in {time.monotonic() - started:.0f}s"


def _ready_on(pod: dict[str, Any]) -> str | None:
    """The node of a Running pod whose containers are all Ready, else None."""
    statuses = pod["status"].get("containerStatuses") or []
    if pod["status"].get("phase") == "Running" and statuses and all(c["ready"] for c in statuses):
        return str(pod["spec"].get("nodeName"))
    return None


def reschedule(app: str = "rabbitmq", timeout: float = 300.0) -> str:
    """Move the one pod of a StatefulSet ``app`` onto the other worker: its node cordoned, the
    pod deleted (gracefully), and back once the new pod is Ready elsewhere; then uncordon.
    Only a pod whose volume both workers mount (infra/shared-volumes.yaml) can move."""
    node = _own_worker(node_of(app))
    started = time.monotonic()
    try:
        kubectl("cordon", node)
        kubectl("-n", NAMESPACE, "delete", "pod", f"{app}-0", "--wait=false")
        while time.monotonic() - started < timeout:
            for pod in _pods(f"app.kubernetes.io/name={app}"):
                moved_to = _ready_on(pod)
                if moved_to and moved_to != node and not pod["metadata"].get("deletionTimestamp"):
                    took = time.monotonic() - started
                    injected.fault()
                    return f"{app} moved from {node} to {moved_to}, Ready {took:.0f}s later"
            time.sleep(2)
        raise FaultError(f"{app} was not Ready on another node within {timeout:.0f}s")
    finally:
        kubectl("uncordon", node)
