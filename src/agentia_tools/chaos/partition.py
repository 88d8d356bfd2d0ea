"""Network partitions on loopback, one process at a time: cgroup v2 and iptables.

Toxiproxy can only cut what is routed through it; a partition here cuts a process's own TCP
connections wherever they go, and keeps cutting the new ones it opens to reconnect:

- the process (a sidecar, an app) is moved into its own cgroup v2 group,
  ``agentia-chaos/<name>`` (with its threads; a supervised process is one process);
- a mangle-table rule marks every connection that process opens to a cut port (CONNMARK,
  kept on the connection's conntrack entry, so the peer's replies carry it too);
- a filter-table rule drops the marked connections' packets in one direction or both: on
  loopback both ends' packets pass OUTPUT, and conntrack tells ``ORIGINAL`` (the process
  towards its peer) from ``REPLY`` (the peer back to it). Dropped, not refused: the process
  sees silence, as across a real partition, until its own timeouts fire.

Healing flushes the project's two chains; the process stays in its group (harmless: the
rules are gone) until it restarts. Only packets on ``lo`` of the named processes are
touched. Needs root and a cgroup v2 hierarchy (``/sys/fs/cgroup/unified`` on a hybrid
mount, else ``/sys/fs/cgroup``).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from agentia import names
from agentia.paths import agentia_home
from agentia_tools.chaos import injected
from agentia_tools.chaos import load as load_mod
from agentia_tools.runtime import debian, infra
from agentia_tools.runtime.infra_config import InfraError
from agentia_tools.runtime.mesh import sidecar_name
from agentia_tools.runtime.supervisor import Supervisor

CHAIN: Final = "AGENTIA-PARTITION"
MARK: Final = "0xa6e1"
GROUP_ROOT: Final = "agentia-chaos"
Direction = Literal["both", "outbound", "inbound"]
CT_DIR: Final[dict[str, str | None]] = {"both": None, "outbound": "ORIGINAL", "inbound": "REPLY"}


class PartitionError(RuntimeError):
    """The partition could not be made (no root, no cgroup v2, no such process)."""


@dataclass(frozen=True)
class Cut:
    """One process's connections to some ports, to be cut."""

    process: str  # a supervised process's name, e.g. agent-runner-dapr
    ports: tuple[int, ...]


def cgroup_root() -> Path:
    """The cgroup v2 hierarchy: the unified mount of a hybrid layout, else the root."""
    for path in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        if (path / "cgroup.procs").exists() and (path / "cgroup.controllers").exists():
            return path
    raise PartitionError(
        "no cgroup v2 hierarchy under /sys/fs/cgroup: cannot tell processes apart (under "
        "`ip netns exec`, /sys is mounted anew without it: use `nsenter --net=/run/netns/NAME`)"
    )


def group_path(process: str) -> str:
    """The group's path as iptables' cgroup match takes it (relative to the v2 root)."""
    return f"{GROUP_ROOT}/{process}"


def rules(
    cuts: Sequence[Cut], direction: Direction, open_links: Sequence[tuple[int, int]] = ()
) -> list[list[str]]:
    """The iptables commands (argv after ``iptables``) that make the partition, in order.
    ``open_links``: (local port, peer port) of connections open before the cut (a socket
    keeps the cgroup it was made in, so those are marked by their ports, from either end)."""
    if direction not in CT_DIR:
        raise PartitionError(f"direction must be one of {', '.join(CT_DIR)}, not {direction!r}")
    out: list[list[str]] = []
    mark = ["-j", "CONNMARK", "--set-mark", MARK]
    for local, peer in open_links:
        for sport, dport in ((local, peer), (peer, local)):
            link = ["--sport", str(sport), "--dport", str(dport)]
            out.append(["-t", "mangle", "-A", CHAIN, "-o", "lo", "-p", "tcp", *link, *mark])
    for cut in cuts:
        for port in cut.ports:
            out.append(
                [
                    *("-t", "mangle", "-A", CHAIN, "-o", "lo", "-p", "tcp"),
                    *("-m", "cgroup", "--path", group_path(cut.process)),
                    *("--dport", str(port), "-j", "CONNMARK", "--set-mark", MARK),
                ]
            )
    drop = ["-A", CHAIN, "-o", "lo", "-m", "connmark", "--mark", MARK]
    ctdir = CT_DIR[direction]
    if ctdir is not None:
        drop += ["-m", "conntrack", "--ctdir", ctdir]
    out.append([*drop, "-j", "DROP"])
    return out


def ensure_iptables(log: Callable[[str], None] = print) -> None:
    """iptables, installed from Debian's package the first time a partition is made (a new
    machine may lack it); without root or apt-get, a PartitionError names the command."""
    try:
        debian.ensure({"iptables": "iptables"}, log, "partitions need iptables")
    except InfraError as exc:
        raise PartitionError(str(exc)) from exc


def _iptables(args: list[str], check: bool = True) -> bool:
    proc = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise PartitionError(f"iptables {' '.join(args)}: {proc.stderr.strip()}")
    return proc.returncode == 0


def _chains() -> None:
    """The project's chains, empty, each jumped to first from OUTPUT."""
    ensure_iptables()
    for table in ("mangle", "filter"):
        _iptables(["-t", table, "-N", CHAIN], check=False)  # exists already: fine
        _iptables(["-t", table, "-F", CHAIN])
        if not _iptables(["-t", table, "-C", "OUTPUT", "-j", CHAIN], check=False):
            _iptables(["-t", table, "-I", "OUTPUT", "1", "-j", CHAIN])


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process under it (from /proc)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(p) for p in task.read_text().split()]
            except OSError:
                continue
    return found


def enclose(process: str, pid: int) -> None:
    """Move the process (and anything it started) into its own group."""
    group = cgroup_root() / group_path(process)
    group.mkdir(parents=True, exist_ok=True)
    for each in _descendants(pid):
        try:
            (group / "cgroup.procs").write_text(str(each))
        except OSError as exc:
            if Path(f"/proc/{each}").exists():
                raise PartitionError(f"cannot move {process} ({each}) into {group}: {exc}") from exc


def _socket_inodes(pids: Sequence[int]) -> set[int]:
    inodes: set[int] = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = fd.readlink().name
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def open_links(pid: int, ports: Sequence[int]) -> list[tuple[int, int]]:
    """(local port, peer port) of the process's TCP connections to ``ports`` (any state)."""
    inodes = _socket_inodes(_descendants(pid))
    found: list[tuple[int, int]] = []
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, remote, inode = cols[1], cols[2], int(cols[9])
            peer = int(remote.rsplit(":", 1)[1], 16)
            if inode in inodes and peer in ports:
                found.append((int(local.rsplit(":", 1)[1], 16), peer))
    return found


def cut(cuts: Sequence[Cut], direction: Direction, pid_of: Callable[[str], int]) -> None:
    """Make the partition now (healing any earlier one first): the connections the
    processes open from now on, and those they have open."""
    links: list[tuple[int, int]] = []
    for each in cuts:
        pid = pid_of(each.process)
        enclose(each.process, pid)
        links += open_links(pid, each.ports)
    commands = rules(cuts, direction, links)
    _chains()
    for command in commands:
        _iptables(command)


def heal() -> None:
    """Remove every partition this module made (safe to call when there is none)."""
    if not shutil.which("iptables"):
        return  # no iptables, so no partition was made
    for table in ("mangle", "filter"):
        _iptables(["-t", table, "-F", CHAIN], check=False)


@dataclass(frozen=True)
class Window:
    """One partition of a schedule: seconds from the start, and its length."""

    at_s: float
    on_s: float


def schedule(
    seed: int, duration_s: float, on_s: tuple[float, float], off_s: tuple[float, float]
) -> list[Window]:
    """A seeded schedule of partitions: off, on, off, on… until ``duration_s`` (each window
    whole inside it), so a run is repeatable from its seed."""
    rng = random.Random(seed)
    windows: list[Window] = []
    t = 0.0
    while True:
        t += rng.uniform(*off_s)
        length = rng.uniform(*on_s)
        if t + length > duration_s:
            return windows
        windows.append(Window(round(t, 2), round(length, 2)))
        t += length


def run_schedule(
    windows: Sequence[Window],
    cuts: Sequence[Cut],
    direction: Direction,
    pid_of: Callable[[str], int],
    log: Callable[[str], None] = lambda _: None,
) -> float:
    """Apply each window in turn (cut, hold, heal); returns the seconds partitioned. The
    partition is healed however this ends."""
    start, held = time.monotonic(), 0.0
    try:
        for n, window in enumerate(windows, 1):
            time.sleep(max(0.0, start + window.at_s - time.monotonic()))
            cut(cuts, direction, pid_of)
            injected.fault()
            log(f"partition {n}/{len(windows)} on for {window.on_s:.1f}s ({direction})")
            began = time.monotonic()
            time.sleep(window.on_s)
            heal()
            held += time.monotonic() - began
    finally:
        heal()
    return held


# -- Chaos Toolkit actions ("module": "agentia_tools.chaos.partition") --------------------

PEERS: Final = ("rabbitmq", "postgres", "redis", "control-plane", "app")
MAX_SCHEDULE_S: Final = 900.0  # a schedule never runs longer than this, whatever it is asked


def peer_cuts(app_id: str, peer: str) -> list[Cut]:
    """What to cut between ``app_id``'s sidecar and ``peer``: the broker, PostgreSQL or Redis
    (the sidecar's connections to their ports), the control plane (placement and the
    scheduler), or ``app`` (the app's connections to its sidecar, and the sidecar's to it)."""
    if app_id not in names.PORTS:
        raise PartitionError(f"app_id: '{app_id}' is not a service of the mesh")
    sidecar, ports = sidecar_name(app_id), names.PORTS[app_id]
    if peer in ("rabbitmq", "postgres", "redis"):
        return [Cut(sidecar, (infra.InfraSettings.from_env().port(peer),))]
    if peer == "control-plane":
        return [Cut(sidecar, (names.PLACEMENT_PORT, names.SCHEDULER_PORT))]
    if peer == "app":
        return [Cut(app_id, (ports.dapr_http, ports.dapr_grpc)), Cut(sidecar, (ports.app,))]
    raise PartitionError(f"peer must be one of {', '.join(PEERS)}, not {peer!r}")


def pid_of(name: str) -> int:
    for proc in Supervisor(agentia_home()).processes():
        if proc.name == name and proc.state == "RUNNING" and proc.pid:
            return proc.pid
    raise PartitionError(f"{name} is not running")


def partition(
    app_id: str,
    peer: str,
    direction: Direction = "both",
    seconds: float = 60,
    on_s: tuple[float, float] = (10, 20),
    off_s: tuple[float, float] = (10, 20),
    seed: int = 1,
) -> str:
    """Partition ``app_id``'s sidecar from ``peer`` on a seeded schedule (``on_s`` cut,
    ``off_s`` healed, repeated within ``seconds``); returns once the last window healed."""
    # Chaos Toolkit passes JSON arrays: lists, made pairs here.
    on, off = (float(on_s[0]), float(on_s[1])), (float(off_s[0]), float(off_s[1]))
    windows = schedule(seed, min(seconds, MAX_SCHEDULE_S), on, off)
    if not windows:
        raise PartitionError(f"no partition fits in {seconds:g}s with on {on_s}, off {off_s}")
    load = load_mod.CURRENT.get("load")
    if load is not None:
        load.fault_at = time.monotonic()
    held = run_schedule(windows, peer_cuts(app_id, peer), direction, pid_of)
    return (
        f"{app_id} cut from {peer} ({direction}) {len(windows)} times, "
        f"{held:.1f}s in all (seed {seed})"
    )


def heal_partitions() -> str:
    """Rollback: no partition left."""
    heal()
    return "healed"
