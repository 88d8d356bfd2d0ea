"""The offline checker over hand-written histories: each fault it counts, and a clean history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentia_tools.chaos.checker import Verdict, check
from agentia_tools.chaos.history import History, Op, read
from agentia_tools.cli.main import app


def ops(*rows: tuple[str, dict[str, Any]]) -> list[Op]:
    return [Op(at=i, op=kind, process="t", **fields) for i, (kind, fields) in enumerate(rows)]  # type: ignore[arg-type]


def run_ok(run: str, event: str = "e1") -> list[tuple[str, dict[str, Any]]]:
    return [
        ("requested", {"key": run}),
        ("accepted", {"key": run, "run": run}),
        ("completed", {"run": run, "event_id": event}),
        ("observed", {"run": run, "status": "success", "via": "ledger"}),
    ]


def test_a_clean_history_is_ok() -> None:
    verdict = check(
        ops(*run_ok("r1"), *run_ok("r2"), ("completed", {"run": "r1", "event_id": "e1"}))
    )
    assert verdict.ok and verdict.summary()["accepted"] == 2 and verdict.final == 2


def test_an_accepted_run_never_read_final_is_lost() -> None:
    verdict = check(
        ops(
            *run_ok("r1"),
            ("requested", {"key": "r2"}),
            ("accepted", {"key": "r2", "run": "r2"}),
            ("observed", {"run": "r2", "status": "running", "via": "ledger"}),
        )
    )
    assert verdict.lost == ["r2"] and not verdict.ok
    assert verdict.summary()["lost_examples"] == ["r2"]


def test_two_distinct_final_events_or_effects_are_duplicates() -> None:
    twice = check(ops(*run_ok("r1"), ("completed", {"run": "r1", "event_id": "e2"})))
    assert twice.duplicated == ["r1"]
    effect = check(
        ops(
            *run_ok("r1"),
            ("effect", {"run": "r1", "effect_key": "r1:1", "event_id": "x"}),
            ("effect", {"run": "r1", "effect_key": "r1:1", "event_id": "x"}),  # redelivered
            ("effect", {"run": "r1", "effect_key": "r1:2", "event_id": "y"}),
        )
    )
    assert effect.ok
    effect2 = check(
        ops(
            *run_ok("r1"),
            ("effect", {"run": "r1", "effect_key": "r1:1", "event_id": "x"}),
            ("effect", {"run": "r1", "effect_key": "r1:1", "event_id": "z"}),
        )
    )
    assert effect2.duplicated == ["r1 (r1:1)"]


def test_a_run_nobody_asked_for_is_unexpected_unless_its_request_outcome_was_unknown() -> None:
    verdict = check(ops(*run_ok("r1"), ("completed", {"run": "r9", "event_id": "e"})))
    assert verdict.unexpected == ["r9"]
    unknown = check(
        ops(
            ("requested", {"key": "r9"}),
            ("refused", {"key": "r9", "definite": False, "why": "ReadTimeout"}),
            ("completed", {"run": "r9", "event_id": "e"}),
        )
    )
    assert unknown.ok and unknown.indeterminate == 1 and unknown.refused == 0


def test_a_read_that_goes_back_is_stale() -> None:
    verdict = check(
        ops(*run_ok("r1"), ("observed", {"run": "r1", "status": "running", "via": "api"}))
    )
    assert verdict.stale == ["r1"] and verdict.lost == []
    flipped = check(
        ops(*run_ok("r1"), ("observed", {"run": "r1", "status": "error", "via": "api"}))
    )
    assert flipped.stale == ["r1"]


def test_gaps_and_stuck_workflows() -> None:
    verdict = check(
        ops(
            *run_ok("r1"),
            ("seqs", {"run": "r1", "seqs": [0, 1, 3]}),
            ("workflow_started", {"instance": "w1"}),
            ("workflow_started", {"instance": "w2"}),
            ("workflow_observed", {"instance": "w1", "status": "COMPLETED"}),
            ("workflow_observed", {"instance": "w2", "status": "RUNNING"}),
        )
    )
    assert verdict.gapped == ["r1"] and verdict.stuck == ["w2"]
    steps = check(
        ops(
            ("workflow_started", {"instance": "w1"}),
            ("workflow_observed", {"instance": "w1", "status": "COMPLETED"}),
            ("effect", {"run": "w1", "effect_key": "w1:2", "event_id": "0"}),
            ("effect", {"run": "w1", "effect_key": "w1:3", "event_id": "0"}),
        )
    )
    assert steps.ok  # a workflow's steps are expected effects
    again = check(ops(("effect", {"run": "w1", "effect_key": "w1:2", "event_id": "1"})))
    assert again.unexpected == ["w1"]
    assert check(ops(*run_ok("r1"), ("seqs", {"run": "r1", "seqs": [0, 1, 2]}))).ok


def test_a_history_file_round_trips_and_a_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    history = History(path)
    history.record("requested", "load", key="r1")
    history.record("accepted", "load", key="r1", run="r1")
    history.close()
    assert [o.op for o in read(path)] == ["requested", "accepted"]
    assert isinstance(check(read(path)), Verdict)
    path.write_text(path.read_text() + '{"op": "teleported"}\n')
    with pytest.raises(ValueError, match=r"h.jsonl:3: not a history op"):
        list(read(path))


def test_the_cli_checks_a_history_and_fails_on_a_lost_run(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    history = History(path)
    for kind, fields in run_ok("r1"):
        history.record(kind, "load", **fields)  # type: ignore[arg-type]
    history.close()
    runner = CliRunner()
    clean = runner.invoke(app, ["chaos", "check", str(path)])
    assert clean.exit_code == 0 and "lost" in clean.output, clean.output
    with path.open("a") as more:
        more.write(Op(at=9, op="accepted", process="load", key="r2", run="r2").model_dump_json())
    lost = runner.invoke(app, ["chaos", "check", str(path)])
    assert lost.exit_code == 1 and "r2" in lost.output, lost.output
    missing = runner.invoke(app, ["chaos", "check", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output
