"""The broker profile ``cluster``: three RabbitMQ nodes with quorum queues, behind one port.

``agentia up --broker cluster`` (or ``AGENTIA_BROKER_PROFILE=cluster``) runs, instead of the
single broker:

- three nodes, ``agentia-rq1@localhost`` … ``rq3``, on the AMQP ports after the mesh's own
  (5681-5683 beside 5672), one Erlang cookie, formed by classic-config peer discovery and
  run with ``pause_minority`` (a node cut off from the other two stops serving rather than
  taking writes a majority will not see);
- every queue the mesh reads as a quorum queue (a Raft group on all three nodes): the
  sidecars get a copy of ``components/`` whose subscriptions ask for ``queueType: quorum``,
  the scheduler's drain asks for it too, and the drain queues are declared so;
- a front on the mesh's AMQP port (runtime/broker_front.py): Dapr's RabbitMQ component takes
  one connection string, so the front hands each connection to a node that answers.

The single broker stays the default; its data and the cluster's are kept apart (switching
profiles needs ``agentia down`` first, and what waits in one broker's queues stays there).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import yaml

from agentia import names
from agentia_tools.runtime import broker_front
from agentia_tools.runtime import infra_servers as servers
from agentia_tools.runtime.programs import ProgramSpec
from agentia_tools.runtime.supervisor import Supervisor

PROFILE_ENV: Final = "AGENTIA_BROKER_PROFILE"
PROFILES: Final = ("single", "cluster")
NODES: Final = ("rq1", "rq2", "rq3")
FRONT: Final = "rabbitmq-front"
# Seconds without a tick before a peer counts as gone (Erlang's default is 60): a partition
# is seen, and the minority paused, within about this long.
NET_TICKTIME_S: Final = 10
Progress = Callable[[str], None]


class ClusterError(RuntimeError):
    """The cluster did not form or cannot be asked; the message says what and where."""


def profile(asked: str | None = None) -> str:
    """The broker profile: ``asked`` (the CLI's ``--broker``), else ``$AGENTIA_BROKER_PROFILE``,
    else ``single``."""
    value = (asked or os.environ.get(PROFILE_ENV) or "single").strip().lower()
    if value not in PROFILES:
        raise ValueError(f"unknown broker profile '{value}'; one of: {', '.join(PROFILES)}")
    return value


def process_name(node: str) -> str:
    return f"rabbitmq-{node}"


def process_names() -> list[str]:
    return [process_name(n) for n in NODES]


def node_port(front_port: int, node: str) -> int:
    """rq1..rq3 listen on the front's port + 9, + 10, + 11 (5681-5683 beside 5672)."""
    return front_port + 9 + NODES.index(node)


def nodename(node: str, front_port: int) -> str:
    suffix = "" if front_port == 5672 else f"-{front_port}"
    return f"agentia-{node}{suffix}@localhost"


def node_of(name: str, front_port: int) -> str | None:
    """The node (rq1..rq3) an Erlang node name is; None when it is none of this cluster's."""
    return next((node for node in NODES if nodename(node, front_port) == name), None)


def node_env(root: Path, node: str, front_port: int, host: str) -> dict[str, str]:
    """rabbitmq-server's (and rabbitmqctl's) environment for one node."""
    base = root / "data" / "rabbitmq-cluster" / node
    run = root / "run" / "rabbitmq-cluster" / node
    port = node_port(front_port, node)
    return servers.rabbitmq_node_env(base, run, nodename(node, front_port), port, host)


def render_conf(root: Path, node: str, front_port: int, host: str, password: str) -> str:
    run = root / "run" / "rabbitmq-cluster" / node
    single = servers.render_rabbitmq_conf(node_port(front_port, node), password, host, run)
    peers = [
        f"cluster_formation.classic_config.nodes.{i} = {nodename(n, front_port)}"
        for i, n in enumerate(NODES, 1)
    ]
    return single + "\n".join(
        [
            "cluster_formation.peer_discovery_backend = classic_config",
            *peers,
            # On a first boot, join at once (the default waits 5-60 s at random).
            "cluster_formation.randomized_startup_delay_range.min = 0",
            "cluster_formation.randomized_startup_delay_range.max = 1",
            "cluster_partition_handling = pause_minority",
            # The front's probes open and drop a connection twice a second: not news.
            "log.connection.level = error",
            "",
        ]
    )


def render_advanced_config() -> str:
    return f"[{{kernel, [{{net_ticktime, {NET_TICKTIME_S}}}]}}].\n"


def _cookie(root: Path) -> str:
    """One Erlang cookie for the three nodes and rabbitmqctl (made once, private)."""
    path = root / "data" / "rabbitmq-cluster" / "cookie"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        servers.write_private(path, secrets.token_hex(20).upper(), None)
    return path.read_text().strip()


def node_specs(root: Path, front_port: int, host: str, password: str) -> list[ProgramSpec]:
    """The three nodes and the front, as supervised programs (files written, nothing run)."""
    user = servers.run_as("rabbitmq")
    cookie = _cookie(root)
    specs = []
    for node in NODES:
        env = node_env(root, node, front_port, host)
        base = servers.own_dir(Path(env["RABBITMQ_MNESIA_BASE"]).parent, user)
        for sub in ("mnesia", "log", "home"):
            servers.own_dir(base / sub, user)
        run = servers.own_dir(Path(env["RABBITMQ_CONFIG_FILE"]).parent, user)
        write = servers.write_private
        write(run / "rabbitmq.conf", render_conf(root, node, front_port, host, password), user)
        write(run / "advanced.config", render_advanced_config(), user)
        write(
            run / "definitions.json", servers.render_rabbitmq_definitions(password, "quorum"), user
        )
        write(run / "enabled_plugins", "[].\n", user)
        write(run / "rabbitmq-env.conf", "# agentia: all settings are in the env\n", user)
        cookie_file = base / "home" / ".erlang.cookie"
        cookie_file.unlink(missing_ok=True)  # it is read-only once written
        write(cookie_file, cookie, user)
        cookie_file.chmod(0o400)  # Erlang refuses a cookie others may read
        specs.append(
            ProgramSpec(
                name=process_name(node),
                group="infra",
                user=user,
                directory=base,
                command=[str(servers.RABBITMQ_BIN / "rabbitmq-server")],
                environment=env,
                stopwaitsecs=60,
                priority=100,
            )
        )
    specs.append(front_spec(front_port, host))
    return specs


def front_spec(front_port: int, host: str) -> ProgramSpec:
    backends = [f"{host}:{node_port(front_port, n)}" for n in NODES]
    command = [sys.executable, "-m", "agentia_tools.runtime.broker_front"]
    command += ["--listen", f"{host}:{front_port}"]
    for backend in backends:
        command += ["--backend", backend]
    return ProgramSpec(
        name=FRONT,
        group="infra",
        command=command,
        environment={"PYTHONUNBUFFERED": "1"},
        priority=110,
    )


def first_boot(root: Path) -> bool:
    """No node has its database yet: the cluster forms now, rq1 first."""
    return not any(
        (root / "data" / "rabbitmq-cluster" / n / "mnesia").glob("*@localhost*") for n in NODES
    )


def start(sup: Supervisor, root: Path, front_port: int, host: str, progress: Progress) -> None:
    """Start the three nodes and the front. On a first boot the cluster forms around rq1:
    the others are started once it answers (a node that finds no peer would form a cluster
    of its own). Later boots start all three at once: each waits for the others' tables."""
    forming = first_boot(root)
    for node in NODES:
        progress(f"starting {process_name(node)}")
        sup.start(process_name(node))
        if forming and node == NODES[0]:
            port = node_port(front_port, node)
            deadline = time.monotonic() + 120
            while not servers.answering(host, port):
                if time.monotonic() > deadline:
                    raise ClusterError(f"{process_name(node)} not answering on {port} after 120s")
                time.sleep(0.5)
    progress(f"starting {FRONT}")
    sup.start(FRONT)


def ctl(
    root: Path, front_port: int, host: str, args: list[str], node: str = "rq1", timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a RabbitMQ CLI (``args[0]``: rabbitmqctl, rabbitmq-queues, …) against ``node``."""
    env = {**os.environ, **node_env(root, node, front_port, host)}
    cmd = [str(servers.RABBITMQ_BIN / args[0]), *args[1:], "-n", nodename(node, front_port)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def ctl_json(root: Path, front_port: int, host: str, args: list[str]) -> Any:
    """A CLI's JSON answer from the first node that gives one."""
    errors = []
    for node in NODES:
        try:
            proc = ctl(root, front_port, host, [*args, "--formatter", "json", "-q"], node)
        except (OSError, subprocess.SubprocessError) as exc:
            errors.append(f"{node}: {exc}")
            continue
        if proc.returncode == 0:
            return json.loads(proc.stdout or "null")
        errors.append(f"{node}: {(proc.stderr or proc.stdout).strip()[-200:]}")
    raise ClusterError("no node of the cluster answers: " + "; ".join(errors))


def running_nodes(root: Path, front_port: int, host: str) -> list[str]:
    status = ctl_json(root, front_port, host, ["rabbitmq-diagnostics", "cluster_status"])
    return sorted(status.get("running_nodes", []))


def node_status(root: Path, front_port: int, host: str, node: str) -> dict[str, Any] | None:
    """``node``'s own view of the cluster (running nodes, partitions); None if it does not
    answer."""
    args = ["rabbitmq-diagnostics", "cluster_status", "--formatter", "json", "-q"]
    try:
        proc = ctl(root, front_port, host, args, node)
        status = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def split_off(root: Path, front_port: int, host: str) -> list[str]:
    """Nodes (rq1..rq3) outside the majority's running set that still serve clients and
    see a partition: a node frozen and thawed (SIGSTOP, a suspended VM) comes back
    believing the others left, which ``pause_minority`` does not catch (it pauses a node
    that sees the others go, not one that was gone). RabbitMQ's remedy is to restart that
    node; it joins the majority again as it boots. A node paused as a real minority serves
    nobody, so it is not named: it resumes by itself once the partition heals."""
    views = {node: node_status(root, front_port, host, node) for node in NODES}
    majority = next(
        (
            set(v.get("running_nodes") or [])
            for v in views.values()
            if v and len(v.get("running_nodes") or []) * 2 > len(NODES)
        ),
        None,
    )
    if majority is None:
        return []
    return [
        n
        for n, own in views.items()
        if own is not None
        and nodename(n, front_port) not in majority
        and own.get("partitions")
        and broker_front.answers_amqp(host, node_port(front_port, n))
    ]


def settle(
    root: Path, front_port: int, host: str, progress: Progress, timeout: float = 180
) -> float:
    """Wait until all three nodes run as one cluster, then mend what forming it can leave
    behind, until nothing is left to mend: a virtual host not running on a node (RabbitMQ
    3.10 starts a vhost declared at boot only on the nodes in the cluster at that moment;
    3.13 reconciles this itself), and a quorum queue without a member on each node (a queue
    declared while a node was away has fewer). Seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    want = sorted(nodename(n, front_port) for n in NODES)
    seen: list[str] = []
    while time.monotonic() < deadline:
        try:
            seen = running_nodes(root, front_port, host)
        except (ClusterError, ValueError):
            seen = []
        if seen == want:
            break
        time.sleep(1)
    else:
        raise ClusterError(
            f"rabbitmq cluster: {len(seen)} of 3 nodes running after {timeout:.0f}s "
            f"({', '.join(seen) or 'none answer'}); logs: rabbitmq-rq*.log"
        )
    while wrong := _mend(root, front_port, host, progress):
        if time.monotonic() > deadline:
            raise ClusterError(
                f"rabbitmq cluster: still {'; '.join(wrong)} after {timeout:.0f}s; "
                "logs: rabbitmq-rq*.log"
            )
        time.sleep(1)
    took = time.monotonic() - started
    progress(f"rabbitmq cluster: 3 nodes running, quorum queues on all three ({took:.1f}s)")
    return took


def stopped_vhosts(rows: Any, front_port: int) -> list[tuple[str, str]]:
    """(virtual host, node rq1..rq3) for each vhost a running node of this cluster does not
    run, from ``rabbitmqctl list_vhosts name cluster_state``'s JSON (a node that is down is
    not named: it starts its vhosts as it boots)."""
    out = []
    for row in rows if isinstance(rows, list) else []:
        for name, state in (row.get("cluster_state") or {}).items():
            node = node_of(name, front_port)
            if node is not None and state not in ("running", "nodedown"):
                out.append((str(row.get("name")), node))
    return out


def restart_stopped_vhosts(
    root: Path, front_port: int, host: str, progress: Progress
) -> list[tuple[str, str]]:
    """Restart each virtual host a running node does not run (``stopped_vhosts``) on that
    node; the (vhost, node) pairs it found."""
    rows = ctl_json(root, front_port, host, ["rabbitmqctl", "list_vhosts", "name", "cluster_state"])
    found = stopped_vhosts(rows, front_port)
    for vhost, node in found:
        progress(
            f"rabbitmq cluster: virtual host '{vhost}' down on {process_name(node)}; "
            "restarting it there"
        )
        ctl(root, front_port, host, ["rabbitmqctl", "restart_vhost", "--vhost", vhost], node)
    return found


def lacking_members(queues: list[dict[str, Any]], want: list[str]) -> list[str]:
    """The nodes (Erlang names) some quorum queue lacks as a member."""
    return [n for n in want if any(n not in (q.get("members") or []) for q in queues)]


def _mend(root: Path, front_port: int, host: str, progress: Progress) -> list[str]:
    """One round of mending (see ``settle``); what was wrong at its start ([] if nothing)."""
    wrong = [
        f"virtual host '{vhost}' down on {process_name(node)}"
        for vhost, node in restart_stopped_vhosts(root, front_port, host, progress)
    ]
    queues = quorum_queues(root, front_port, host)
    have = {q.get("name") for q in queues}
    # The definitions declare them at boot; a drain published to with no queue loses events.
    wrong += [f"no quorum queue {q}" for q in drain_queue_names() if q not in have]
    want = sorted(nodename(n, front_port) for n in NODES)
    for name in lacking_members(queues, want):
        wrong.append(f"quorum queues lack a member on {name}")
        ctl(root, front_port, host, ["rabbitmq-queues", "grow", name, "all"])
    return wrong


def quorum_queues(root: Path, front_port: int, host: str) -> list[dict[str, Any]]:
    """Each quorum queue's name, leader and members (from the first node that answers)."""
    rows = ctl_json(
        root, front_port, host, ["rabbitmqctl", "list_queues", "name", "type", "leader", "members"]
    )
    return [r for r in rows or [] if r.get("type") == "quorum"]


def quorum_resources(home: Path, components: Path) -> Path:
    """A copy of ``components/`` whose subscriptions ask Dapr for quorum queues (Dapr 1.18's
    RabbitMQ component takes ``queueType`` only per subscription). Made at each plan, but a
    file is only written when its text changes: running sidecars watch the folder and
    reload (a restart, for some kinds) on every change they see."""
    out = home / "run" / "resources-quorum"
    out.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, str] = {}
    for path in sorted(components.glob("*.yaml")):
        text = path.read_text()
        docs = list(yaml.safe_load_all(text))
        if any(isinstance(d, dict) and d.get("kind") == "Subscription" for d in docs):
            for doc in docs:
                if isinstance(doc, dict) and doc.get("kind") == "Subscription":
                    doc["spec"].setdefault("metadata", {})["queueType"] = "quorum"
            header = f"# Generated from components/{path.name} for the cluster broker profile.\n"
            text = header + yaml.safe_dump_all(docs, sort_keys=False)
        wanted[path.name] = text
    for old in out.glob("*.yaml"):
        if old.name not in wanted:
            old.unlink()
    for name, text in wanted.items():
        target = out / name
        if not target.is_file() or target.read_text() != text:
            tmp = target.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(target)  # a watcher never reads half a file
    return out


def queue_type(chosen: str) -> str:
    """The queue type the apps ask for (the scheduler's drain) under a broker profile."""
    return "quorum" if chosen == "cluster" else "classic"


def drain_queue_names() -> list[str]:
    return [names.drain_queue(t) for t in names.DRAINABLE_TOPICS]
