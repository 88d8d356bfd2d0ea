"""Faults on the three-node RabbitMQ cluster (``"module": "agentia_tools.chaos.broker_cluster"``).

An experiment first moves the mesh onto the cluster broker profile (:func:`use_broker`:
`agentia down`, then `up --broker cluster`; runtime/rabbitmq_cluster.py), puts its load on,
then hits the node that leads agent-runner's quorum queue: SIGKILL, SIGSTOP, cut from the
other two (a minority partition), or a rolling restart of all three. Recovery is the mesh
healthy, all three nodes running as one cluster, and every quorum queue led by one of them.
The rollback puts the mesh back on the single broker.
"""

from __future__ import annotations

import time
from typing import Final

from agentia import names
from agentia.paths import agentia_home
from agentia_tools.chaos import actions, injected, partition
from agentia_tools.chaos import load as load_mod
from agentia_tools.runtime import health, infra, orchestrate, rabbitmq_cluster
from agentia_tools.runtime.infra_servers import server_root
from agentia_tools.runtime.supervisor import Supervisor

# The queue the hot path runs on: agent-runner's subscription to runs.requested (Dapr
# names a subscription's queue <app id>-<topic>).
HOT_QUEUE: Final = f"{names.AGENT_RUNNER}-{names.TOPIC_RUNS_REQUESTED}"
MAX_FAULT_S: Final = 300.0  # no single fault is held longer, whatever it is asked


class ClusterFaultError(RuntimeError):
    """The fault could not be made (the mesh is not on the cluster, no leader)."""


def _where() -> tuple[int, str]:
    settings = infra.InfraSettings.from_env()
    return settings.rabbitmq_port, settings.host


def use_broker(profile: str = "cluster", timeout: float = 300) -> str:
    """Bring the mesh up on the broker ``profile`` (down first if it runs the other one)."""
    home = agentia_home()
    started = time.monotonic()
    if orchestrate.running_broker(home) not in (None, profile):
        orchestrate.down(home, lambda _: None)
    orchestrate.up(home, lambda _: None, broker=profile)
    took = actions.wait_healthy(timeout)
    return f"mesh on the {profile} broker, healthy {time.monotonic() - started + took:.1f}s on"


def leader(queue: str = HOT_QUEUE) -> str:
    """The node (rq1..rq3) that leads ``queue``."""
    port, host = _where()
    for row in rabbitmq_cluster.quorum_queues(server_root(agentia_home()), port, host):
        if row.get("name") == queue and row.get("leader"):
            node = rabbitmq_cluster.node_of(str(row["leader"]), port)
            if node:
                return node
    raise ClusterFaultError(
        f"no quorum queue '{queue}' with a leader (is the mesh on the cluster?)"
    )


def cluster_healthy() -> str | None:
    """None when all three nodes run as one cluster and every quorum queue has a running
    leader; else what is not so."""
    port, host = _where()
    root = server_root(agentia_home())
    try:
        running = rabbitmq_cluster.running_nodes(root, port, host)
        if len(running) != len(rabbitmq_cluster.NODES):
            return f"{len(running)} of 3 nodes running"
        queues = rabbitmq_cluster.quorum_queues(root, port, host)
    except (rabbitmq_cluster.ClusterError, ValueError) as exc:
        return str(exc)
    if not queues:
        return "no quorum queue"
    leaderless = [q["name"] for q in queues if q.get("leader") not in running]
    return f"queues without a running leader: {', '.join(leaderless)}" if leaderless else None


def wait_recovered(timeout: float = 240) -> float:
    """Seconds until the mesh is healthy and the cluster whole (raises after ``timeout``)."""
    started = time.monotonic()
    deadline = started + timeout
    why = "not checked"
    while time.monotonic() < deadline:
        if all(p.ok for p in health.mesh_probes()):
            why = cluster_healthy() or ""
            if not why:
                return time.monotonic() - started
        else:
            why = "mesh not healthy"
        time.sleep(1)
    raise ClusterFaultError(f"not recovered {timeout:.0f}s after the fault: {why}")


def _mark_fault() -> None:
    injected.fault()
    load = load_mod.CURRENT.get("load")
    if load is not None:
        load.fault_at = time.monotonic()


def _mark_ended() -> None:
    actions.FAULTS["ended"] = time.time()  # the API load's figures count from here


def _mark_recovered(took: float) -> None:
    load = load_mod.CURRENT.get("load")
    if load is not None:
        load.recovery_s = round(took, 2)


def kill_leader(queue: str = HOT_QUEUE, signal: str = "KILL", recover_timeout: float = 240) -> str:
    """SIGKILL the node leading ``queue``; the supervisor restarts it."""
    node = leader(queue)
    Supervisor(agentia_home()).kill(rabbitmq_cluster.process_name(node), signal)
    _mark_fault()
    _mark_ended()
    time.sleep(2)
    took = wait_recovered(recover_timeout) + 2
    _mark_recovered(took)
    return f"{node} (leader of {queue}) killed with SIG{signal}; now led by {leader(queue)}; " + (
        f"recovered after {took:.1f}s"
    )


def freeze_leader(queue: str = HOT_QUEUE, seconds: float = 20, recover_timeout: float = 240) -> str:
    """SIGSTOP the node leading ``queue`` for ``seconds`` (its sockets stay open: it is
    silent, not gone), then SIGCONT."""
    node = leader(queue)
    name = rabbitmq_cluster.process_name(node)
    sup = Supervisor(agentia_home())
    sup.kill(name, "STOP")
    _mark_fault()
    try:
        time.sleep(min(seconds, MAX_FAULT_S))
    finally:
        sup.kill(name, "CONT")
        _mark_ended()
    took = wait_recovered(recover_timeout)
    _mark_recovered(seconds + took)
    return (
        f"{node} (leader of {queue}) frozen {seconds:g}s; now led by {leader(queue)}; "
        f"recovered {took:.1f}s after SIGCONT"
    )


def minority_cuts(node: str) -> list[partition.Cut]:
    """Every distribution link between ``node`` and the other two, from either end."""
    port, _ = _where()

    def dist(n: str) -> int:
        return rabbitmq_cluster.node_port(port, n) + 20000

    others = [n for n in rabbitmq_cluster.NODES if n != node]
    cuts = [partition.Cut(rabbitmq_cluster.process_name(node), tuple(dist(n) for n in others))]
    cuts += [partition.Cut(rabbitmq_cluster.process_name(n), (dist(node),)) for n in others]
    return cuts


def partition_leader(
    queue: str = HOT_QUEUE, seconds: float = 30, recover_timeout: float = 240
) -> str:
    """Cut the node leading ``queue`` off from the other two for ``seconds`` (dropped
    packets on their Erlang distribution links; clients still reach every node)."""
    node = leader(queue)
    cuts = minority_cuts(node)
    partition.cut(cuts, "both", partition.pid_of)
    _mark_fault()
    try:
        time.sleep(min(seconds, MAX_FAULT_S))
    finally:
        partition.heal()
        _mark_ended()
    took = wait_recovered(recover_timeout)
    _mark_recovered(seconds + took)
    return (
        f"{node} (leader of {queue}) cut off from the other two for {seconds:g}s; "
        f"now led by {leader(queue)}; recovered {took:.1f}s after healing"
    )


def rolling_restart(pause_s: float = 5, recover_timeout: float = 240) -> str:
    """Stop and start each node in turn (rq1, rq2, rq3), the next once the cluster is
    whole again: an upgrade's restart, under load."""
    sup = Supervisor(agentia_home())
    _mark_fault()
    injected.fault(len(rabbitmq_cluster.NODES) - 1)  # each node's restart is one
    took: list[str] = []
    for node in rabbitmq_cluster.NODES:
        name = rabbitmq_cluster.process_name(node)
        began = time.monotonic()
        sup.stop(name)
        time.sleep(min(pause_s, MAX_FAULT_S))
        sup.start(name, wait=False)
        wait_recovered(recover_timeout)
        took.append(f"{node} {time.monotonic() - began:.1f}s")
        _mark_ended()
    _mark_recovered(0)
    return "rolling restart: " + ", ".join(took)


def thaw_nodes() -> str:
    """Rollback: SIGCONT to every node still running (one may have been left frozen)."""
    sup = Supervisor(agentia_home())
    names_ = set(rabbitmq_cluster.process_names())
    for proc in sup.processes():
        if proc.name in names_ and proc.state == "RUNNING":
            sup.kill(proc.name, "CONT")
    return "every node sent SIGCONT"
