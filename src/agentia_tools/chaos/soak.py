"""A soak: the fault experiments one after another, in a seeded order, for hours, on the local
mesh; the checker's verdict of every one summed, and each process's memory (RSS) followed.

Not in ``make test`` (``agentia soak --hours N``). Each experiment brings its own load and
fault and is judged as in ``agentia chaos run``. With ``--background-rate R`` a steady load
of R runs a second also runs across all of them, through every fault and the recoveries
between, and is judged by the checker once the soak ends. Between two experiments, every
supervised process's RSS
is read from /proc. Faults restart most processes now and then, and a restart starts memory
over, so growth is measured per life (one pid): from its second reading (after one
experiment's traffic has warmed it up) to its last. A process's figure is that of its longest
measured life, reported with how long that life was and how many restarts there were.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from agentia.paths import agentia_home
from agentia_tools.chaos import load as load_mod
from agentia_tools.chaos import runner
from agentia_tools.runtime.supervisor import Supervisor

# Every local experiment that takes a few minutes and leaves the mesh as it found it (the
# loops and kill-everything are longer, network-broker needs Toxiproxy, kind a cluster: run
# them with `agentia chaos run`). The quorum-* ones move the mesh onto the cluster and back.
DEFAULT_SET: Final = (
    "kill-runner",
    "kill-runner-sidecar",
    "kill-gateway-sidecar",
    "kill-control-plane",
    "poison-event",
    "stop-redis",
    "partition-runner-broker",
    "partition-runner-broker-inbound",
    "partition-runner-broker-flapping",
    "partition-runner-postgres",
    "partition-runner-control-plane",
    "partition-runner-app",
    "clock-runner-jumps",
    "clock-skew-gateway-runner",
    "wal-disk-full-postgres",
    "dead-letter-publish-fails",
    "stop-postgres",
    "stop-rabbitmq",
    "freeze-runner-sidecar",
    "clock-gateway-jumps",
    "poison-envelopes",
    "disk-alarm-rabbitmq",
    "oom-memory",
    "oom-runner",
    "quorum-kill-leader",
    "quorum-freeze-leader",
    "quorum-partition-leader",
    "quorum-rolling-restart",
)
MAX_HOURS: Final = 48.0
MAX_BACKGROUND_RATE: Final = 10.0
# They move the mesh onto another broker and back; what waits in one broker's queues stays
# there, so a load running across the move would strand the runs it had just published.
MOVES_BROKER: Final = "quorum-"
BACKGROUND_SETTLE_S: Final = 900.0  # after the soak, for the background's runs to finish
RUN_FIELDS: Final = ("experiment", "verdict", "accepted", "completed", "faults", "history")


@dataclass
class Life:
    """One life (pid) of a process: its RSS from its second reading to its last."""

    pid: int
    readings: int = 0
    base_kib: int = 0
    last_kib: int = 0
    base_at: float = 0.0
    last_at: float = 0.0

    def read(self, kib: int, now: float) -> None:
        self.readings += 1
        if self.readings <= 2:  # the first reading is still warming up
            self.base_kib, self.base_at = kib, now
        self.last_kib, self.last_at = kib, now

    def span_s(self) -> float:
        return self.last_at - self.base_at if self.readings > 2 else 0.0

    def growth(self) -> float | None:
        if self.readings <= 2 or not self.base_kib:
            return None
        return (self.last_kib - self.base_kib) / self.base_kib


@dataclass
class Memory:
    """One process's RSS over the soak, life by life."""

    lives: list[Life] = field(default_factory=list)

    def read(self, pid: int, kib: int, now: float) -> None:
        if not self.lives or self.lives[-1].pid != pid:
            self.lives.append(Life(pid))
        self.lives[-1].read(kib, now)

    @property
    def restarts(self) -> int:
        return max(len(self.lives) - 1, 0)

    def longest(self) -> Life | None:
        """The longest life with a growth figure, if any."""
        measured = [life for life in self.lives if life.growth() is not None]
        return max(measured, key=Life.span_s, default=None)

    def growth(self) -> float | None:
        """Relative growth over the longest measured life."""
        life = self.longest()
        return None if life is None else life.growth()


@dataclass
class Soak:
    """What a soak did so far."""

    seed: int
    experiments: list[dict[str, Any]] = field(default_factory=list)
    memory: dict[str, Memory] = field(default_factory=dict)
    background: dict[str, Any] | None = None  # the background load's outcome, once judged

    def totals(self) -> dict[str, Any]:
        reports = self.experiments
        checker = [r.get("checker") or {} for r in reports]
        return {
            "experiments": len(reports),
            "passed": sum(1 for r in reports if r.get("verdict") == "pass"),
            "failed": sorted({r["experiment"] for r in reports if r.get("verdict") != "pass"}),
            "runs_accepted": sum(int(r.get("accepted") or 0) for r in reports),
            "runs_completed": sum(int(r.get("completed") or 0) for r in reports),
            "faults": sum(int(r.get("faults") or 0) for r in reports),
            "lost": sum(int(c.get("lost") or 0) for c in checker),
            "duplicated": sum(int(c.get("duplicated") or 0) for c in checker),
            "stale": sum(int(c.get("stale") or 0) for c in checker),
            "max_rss_growth": max(
                (g for m in self.memory.values() if (g := m.growth()) is not None), default=None
            ),
            "rss_measured": f"{sum(1 for m in self.memory.values() if m.growth() is not None)}"
            f" of {len(self.memory)} processes",
        }


def rss_kib(pid: int) -> int:
    """A process's resident memory (KiB), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def sample(soak: Soak, sup: Supervisor) -> None:
    """Read every running process's RSS into the soak's record."""
    now = time.monotonic()
    for proc in sup.processes():
        if proc.state != "RUNNING" or not proc.pid:
            continue
        soak.memory.setdefault(proc.name, Memory()).read(proc.pid, rss_kib(proc.pid), now)


def order(names: list[str], seed: int) -> Callable[[], str]:
    """The experiments in a seeded random order, each once per round."""
    rng = random.Random(seed)
    queue: list[str] = []

    def next_name() -> str:
        if not queue:
            queue.extend(rng.sample(names, len(names)))
        return queue.pop()

    return next_name


def validate(hours: float, names: list[str], background_rate: float = 0.0) -> None:
    """:class:`runner.ChaosError` naming what is wrong with the soak's arguments."""
    if not 0 < hours <= MAX_HOURS:
        raise runner.ChaosError(f"--hours must be more than 0 and at most {MAX_HOURS:g}")
    if not 0 <= background_rate <= MAX_BACKGROUND_RATE:
        raise runner.ChaosError(
            f"--background-rate must be from 0 (none) to {MAX_BACKGROUND_RATE:g} runs a second"
        )
    movers = [n for n in names if n.startswith(MOVES_BROKER)]
    if background_rate and movers:
        raise runner.ChaosError(
            f"--background-rate cannot run across {', '.join(movers)}: they move the mesh "
            "to another broker and back, stranding the runs it just published; leave them "
            "out with --experiments"
        )
    known = {e.name for e in runner.experiments()}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise runner.ChaosError(f"unknown experiment(s): {', '.join(unknown)}")


def run(
    hours: float,
    names: list[str],
    seed: int,
    progress: Callable[[str], None],
    background_rate: float = 0.0,
) -> tuple[Soak, Path]:
    """Soak for ``hours`` (no new experiment starts after that); returns the soak and the
    path of its report, which is rewritten after every experiment."""
    validate(hours, names, background_rate)
    home = agentia_home()
    report = home / "chaos" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    soak, next_name = Soak(seed), order(names, seed)
    started = time.monotonic()
    deadline = started + hours * 3600
    background = None
    if background_rate:
        runs = int(hours * 3600 * background_rate) + 1
        background = load_mod.start(runs, background_rate, experiment=False)
        progress(f"background load: {background_rate:g} runs/s ({background.prefix}*)")
    while time.monotonic() < deadline:
        name = next_name()
        try:
            result = runner.run(name)
        except runner.ChaosError as exc:  # counted as a failed experiment; the soak goes on
            result = {"experiment": name, "verdict": "fail", "error": str(exc)[:500]}
        soak.experiments.append(result)
        sample(soak, Supervisor(home))
        done = soak.totals()
        elapsed = (time.monotonic() - started) / 60
        progress(
            f"{elapsed:5.1f} min · {name}: {result.get('verdict')} · "
            f"{done['passed']}/{done['experiments']} passed, {done['runs_completed']} runs, "
            f"{done['faults']} faults, "
            f"{done['lost']} lost, {done['duplicated']} duplicated"
            + (f" · background {len(background.accepted)} accepted" if background else "")
        )
        report.write_text(json.dumps(summary(soak, hours), indent=1))
    if background is not None:
        background.stop_publish.set()
        progress(f"background load: {len(background.accepted)} accepted; waiting for them")
        soak.background = judge_background(background)
        report.write_text(json.dumps(summary(soak, hours), indent=1))
    return soak, report


def judge_background(background: load_mod.Load) -> dict[str, Any]:
    """The background load's outcome once its last runs have had time to finish: the
    ledger's word on every accepted run, and the checker's on its history."""
    return load_mod.outcome(background, BACKGROUND_SETTLE_S)


def background_clean(result: dict[str, Any] | None) -> bool:
    """No background load, or one with nothing lost or duplicated in the ledger and a
    history the checker passed."""
    if result is None:
        return True
    checker_ok = bool((result.get("checker") or {}).get("ok"))
    return checker_ok and not result.get("lost") and not result.get("duplicated")


def summary(soak: Soak, hours: float) -> dict[str, Any]:
    """The soak's report: totals, each experiment's verdict, each process's memory."""
    return {
        "hours": hours,
        "seed": soak.seed,
        **soak.totals(),
        "background": soak.background,
        "runs": [{k: r.get(k) for k in RUN_FIELDS} for r in soak.experiments],
        "memory": {name: _memory(m) for name, m in sorted(soak.memory.items())},
    }


def _memory(memory: Memory) -> dict[str, Any]:
    life = memory.longest()
    if life is None:
        return {"restarts": memory.restarts, "growth": None}
    growth = life.growth()
    return {
        "restarts": memory.restarts,
        "longest_life_min": round(life.span_s() / 60, 1),
        "first_mib": round(life.base_kib / 1024, 1),
        "last_mib": round(life.last_kib / 1024, 1),
        "growth": None if growth is None else round(growth, 3),
    }
