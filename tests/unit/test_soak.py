"""The soak's bookkeeping: its order, its totals, its memory figures, and bad arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentia_tools.chaos import runner
from agentia_tools.chaos.soak import Memory, Soak, background_clean, order, rss_kib
from agentia_tools.cli.main import app


def test_the_order_is_seeded_and_runs_each_once_per_round() -> None:
    names = ["a", "b", "c", "d"]
    one, two = order(names, 5), order(names, 5)
    first = [one() for _ in range(8)]
    assert first == [two() for _ in range(8)]
    assert sorted(first[:4]) == names and sorted(first[4:]) == names


def _memory(*readings: tuple[int, int, float]) -> Memory:
    memory = Memory()
    for pid, kib, at in readings:
        memory.read(pid, kib, at)
    return memory


def test_growth_is_measured_per_life_from_its_second_reading() -> None:
    # The first reading of a life is still warming up; a life of two readings has no figure.
    assert _memory((1, 50_000, 0), (1, 100_000, 60)).growth() is None
    steady = _memory((1, 50_000, 0), (1, 100_000, 60), (1, 105_000, 120))
    assert steady.growth() == pytest.approx(0.05) and steady.restarts == 0


def test_a_restarted_process_is_judged_by_its_longest_life() -> None:
    memory = _memory(
        (1, 90_000, 0),
        (1, 100_000, 60),
        (1, 110_000, 600),  # 9 min, +10%
        (2, 10_000, 700),
        (2, 80_000, 760),
        (2, 80_800, 3760),  # 50 min, +1%
        (3, 10_000, 3800),  # started over, not measured yet
    )
    assert memory.restarts == 2
    life = memory.longest()
    assert life is not None and life.pid == 2 and life.span_s() == 3000
    assert memory.growth() == pytest.approx(0.01)


def test_totals_sum_the_checkers_verdicts() -> None:
    soak = Soak(seed=1)
    soak.experiments = [
        {"experiment": "a", "verdict": "pass", "accepted": 3, "completed": 3, "faults": 10},
        {
            "experiment": "b",
            "verdict": "fail",
            "accepted": 2,
            "completed": 1,
            "faults": 2,
            "checker": {"lost": 1},
        },
    ]
    soak.memory = {
        "x": _memory((1, 50, 0), (1, 100, 1), (1, 120, 2)),
        "y": _memory((2, 100, 0), (2, 100, 1), (3, 300, 2)),
    }
    totals = soak.totals()
    assert totals["passed"] == 1 and totals["failed"] == ["b"] and totals["lost"] == 1
    assert totals["runs_completed"] == 4 and totals["max_rss_growth"] == pytest.approx(0.2)
    assert totals["rss_measured"] == "1 of 2 processes"
    assert totals["faults"] == 12


def test_faults_of_chaos_toolkits_kubernetes_actions_are_counted_from_the_journal() -> None:
    def step(module: str, status: str = "succeeded", kind: str = "action") -> dict[str, Any]:
        return {"status": status, "activity": {"type": kind, "provider": {"module": module}}}

    journal = {
        "run": [
            step("agentia_tools.chaos.kind_load"),  # load: counted by nobody
            step("chaosk8s.pod.actions"),
            step("chaosk8s.statefulset.actions"),
            step("chaosk8s.pod.actions", status="failed"),  # never injected
            step("chaosk8s.pod.probes", kind="probe"),
        ]
    }
    assert runner.library_faults(journal) == 2


def test_rss_of_this_process_and_of_none() -> None:
    assert rss_kib(os.getpid()) > 1000
    assert rss_kib(2**22 + 7) == 0


def test_bad_arguments_are_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTIA_HOME", str(tmp_path))
    runner = CliRunner()
    hours = runner.invoke(app, ["soak", "--hours", "0"])
    assert hours.exit_code == 2 and "--hours must be more than 0" in hours.output
    unknown = runner.invoke(app, ["soak", "--hours", "1", "--experiments", "kill-runner,nope"])
    assert unknown.exit_code == 2 and "unknown experiment(s): nope" in unknown.output
    rate = runner.invoke(app, ["soak", "--hours", "1", "--background-rate", "-1"])
    assert rate.exit_code == 2 and "--background-rate must be from 0" in rate.output
    # The default set moves the mesh between brokers: a load across that would strand runs.
    moves = runner.invoke(app, ["soak", "--hours", "1", "--background-rate", "1"])
    assert moves.exit_code == 2 and "cannot run across quorum-kill-leader" in moves.output


def test_the_background_is_clean_only_with_nothing_lost_duplicated_or_odd() -> None:
    assert background_clean(None)
    ok = {"lost": 0, "duplicated": 0, "checker": {"ok": True, "lost": 0, "stale": 0}}
    assert background_clean(ok)
    assert not background_clean({**ok, "lost": 1})
    assert not background_clean({**ok, "checker": {"ok": False, "stale": 2}})
