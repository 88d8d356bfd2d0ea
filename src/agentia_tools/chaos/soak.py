"""A soak: the fault experiments one after another, in a seeded order, for hours, on the local
mesh; the checker's verdict of every one summed, and each process's memory (RSS) followed.

Not in ``make test`` (``agentia soak --hours N``). Each experiment brings its own load and
fault and is judged as in ``agentia chaos run``; between two, every supervised process's RSS
is read from /proc. A process that was never restarted (same pid throughout) has its growth
from its first reading after the warm-up (the first experiment) to its last; one that a fault
restarted is named as such (its memory started over).
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
from agentia_tools.chaos import runner
from agentia_tools.runtime.supervisor import Supervisor

# Faults that take a minute or two each and leave the mesh as they found it (the loops and
# kill-everything are longer; run them with `agentia chaos run`).
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
)
MAX_HOURS: Final = 48.0


@dataclass
class Memory:
    """One process's RSS over the soak."""

    pid: int
    first_kib: int
    last_kib: int
    restarts: int = 0

    def growth(self) -> float | None:
        """Relative growth since the warm-up; None when a restart started it over."""
        if self.restarts or not self.first_kib:
            return None
        return (self.last_kib - self.first_kib) / self.first_kib


@dataclass
class Soak:
    """What a soak did so far."""

    seed: int
    experiments: list[dict[str, Any]] = field(default_factory=list)
    memory: dict[str, Memory] = field(default_factory=dict)

    def totals(self) -> dict[str, Any]:
        reports = self.experiments
        checker = [r.get("checker") or {} for r in reports]
        return {
            "experiments": len(reports),
            "passed": sum(1 for r in reports if r.get("verdict") == "pass"),
            "failed": sorted({r["experiment"] for r in reports if r.get("verdict") != "pass"}),
            "runs_accepted": sum(int(r.get("accepted") or 0) for r in reports),
            "runs_completed": sum(int(r.get("completed") or 0) for r in reports),
            "lost": sum(int(c.get("lost") or 0) for c in checker),
            "duplicated": sum(int(c.get("duplicated") or 0) for c in checker),
            "stale": sum(int(c.get("stale") or 0) for c in checker),
            "max_rss_growth": max(
                (g for m in self.memory.values() if (g := m.growth()) is not None), default=None
            ),
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
    for proc in sup.processes():
        if proc.state != "RUNNING" or not proc.pid:
            continue
        kib = rss_kib(proc.pid)
        seen = soak.memory.get(proc.name)
        if seen is None:
            soak.memory[proc.name] = Memory(proc.pid, kib, kib)
        elif seen.pid != proc.pid:
            seen.pid, seen.restarts, seen.last_kib = proc.pid, seen.restarts + 1, kib
        else:
            seen.last_kib = kib


def order(names: list[str], seed: int) -> Callable[[], str]:
    """The experiments in a seeded random order, each once per round."""
    rng = random.Random(seed)
    queue: list[str] = []

    def next_name() -> str:
        if not queue:
            queue.extend(rng.sample(names, len(names)))
        return queue.pop()

    return next_name


def validate(hours: float, names: list[str]) -> None:
    """:class:`runner.ChaosError` naming what is wrong with the soak's arguments."""
    if not 0 < hours <= MAX_HOURS:
        raise runner.ChaosError(f"--hours must be more than 0 and at most {MAX_HOURS:g}")
    known = {e.name for e in runner.experiments()}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise runner.ChaosError(f"unknown experiment(s): {', '.join(unknown)}")


def run(
    hours: float, names: list[str], seed: int, progress: Callable[[str], None]
) -> tuple[Soak, Path]:
    """Soak for ``hours`` (no new experiment starts after that); returns the soak and the
    path of its report, which is rewritten after every experiment."""
    validate(hours, names)
    home = agentia_home()
    report = home / "chaos" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    soak, next_name = Soak(seed), order(names, seed)
    started = time.monotonic()
    deadline = started + hours * 3600
    while time.monotonic() < deadline:
        name = next_name()
        try:
            result = runner.run(name)
        except runner.ChaosError as exc:  # counted as a failed experiment; the soak goes on
            result = {"experiment": name, "verdict": "fail", "error": str(exc)[:500]}
        soak.experiments.append(result)
        sample(soak, Supervisor(home))
        if len(soak.experiments) == 1:  # the warm-up: memory is measured from here
            for memory in soak.memory.values():
                memory.first_kib, memory.restarts = memory.last_kib, 0
        done = soak.totals()
        elapsed = (time.monotonic() - started) / 60
        progress(
            f"{elapsed:5.1f} min · {name}: {result.get('verdict')} · "
            f"{done['passed']}/{done['experiments']} passed, {done['runs_completed']} runs, "
            f"{done['lost']} lost, {done['duplicated']} duplicated"
        )
        report.write_text(json.dumps(summary(soak, hours), indent=1))
    return soak, report


def summary(soak: Soak, hours: float) -> dict[str, Any]:
    """The soak's report: totals, each experiment's verdict, each process's memory."""
    return {
        "hours": hours,
        "seed": soak.seed,
        **soak.totals(),
        "runs": [
            {k: r.get(k) for k in ("experiment", "verdict", "accepted", "completed", "history")}
            for r in soak.experiments
        ],
        "memory": {
            name: {
                "first_mib": round(m.first_kib / 1024, 1),
                "last_mib": round(m.last_kib / 1024, 1),
                "restarts": m.restarts,
                "growth": None if (g := m.growth()) is None else round(g, 3),
            }
            for name, m in sorted(soak.memory.items())
        },
    }
