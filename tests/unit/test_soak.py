"""The soak's bookkeeping: its order, its totals, its memory figures, and bad arguments."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentia_tools.chaos.soak import Memory, Soak, order, rss_kib
from agentia_tools.cli.main import app


def test_the_order_is_seeded_and_runs_each_once_per_round() -> None:
    names = ["a", "b", "c", "d"]
    one, two = order(names, 5), order(names, 5)
    first = [one() for _ in range(8)]
    assert first == [two() for _ in range(8)]
    assert sorted(first[:4]) == names and sorted(first[4:]) == names


def test_growth_is_measured_only_for_a_process_never_restarted() -> None:
    assert Memory(1, 100_000, 105_000).growth() == pytest.approx(0.05)
    assert Memory(1, 100_000, 105_000, restarts=1).growth() is None


def test_totals_sum_the_checkers_verdicts() -> None:
    soak = Soak(seed=1)
    soak.experiments = [
        {"experiment": "a", "verdict": "pass", "accepted": 3, "completed": 3, "checker": {}},
        {
            "experiment": "b",
            "verdict": "fail",
            "accepted": 2,
            "completed": 1,
            "checker": {"lost": 1},
        },
    ]
    soak.memory = {"x": Memory(1, 100, 120), "y": Memory(2, 100, 300, restarts=2)}
    totals = soak.totals()
    assert totals["passed"] == 1 and totals["failed"] == ["b"] and totals["lost"] == 1
    assert totals["runs_completed"] == 4 and totals["max_rss_growth"] == pytest.approx(0.2)


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
