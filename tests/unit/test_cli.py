"""The CLI refuses bad arguments with a clear message and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentia_tools.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGENTIA_HOME", str(tmp_path))
    return tmp_path


def test_publish_bad_topic() -> None:
    result = runner.invoke(app, ["publish", "has space", "{}"])
    assert result.exit_code == 2
    assert "TOPIC" in result.output and "Traceback" not in result.output


def test_publish_bad_json() -> None:
    result = runner.invoke(app, ["publish", "runs.requested", "{oops"])
    assert result.exit_code == 2
    assert "DATA is not valid JSON" in result.output


def test_publish_missing_file() -> None:
    result = runner.invoke(app, ["publish", "runs.requested", "@/no/such/file.json"])
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_invoke_unknown_app() -> None:
    result = runner.invoke(app, ["invoke", "nosuch", "internal/info"])
    assert result.exit_code == 2
    assert "unknown app 'nosuch'" in result.output


def test_invoke_bad_verb() -> None:
    result = runner.invoke(app, ["invoke", "memory", "x", "--verb", "FETCH"])
    assert result.exit_code == 2
    assert "--verb" in result.output


def test_publish_before_up_says_so() -> None:
    result = runner.invoke(app, ["publish", "runs.requested", "{}"])
    assert result.exit_code == 1
    assert "agentia up" in result.output


def test_logs_of_unknown_process() -> None:
    result = runner.invoke(app, ["logs", "nosuch"])
    assert result.exit_code == 2
    assert "no log for 'nosuch'" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cost-budget", "five"], "--cost-budget"),
        (["--cost-budget", "0.0000001"], "more than 6 decimals"),
        (["--cost-budget", "0"], "above 0"),
        (["--model-limit", "offline=60/hour"], "--model-limit"),
        (["--model-limit", "bad model=1/min"], "not a model name"),
    ],
)
def test_keys_create_refuses_bad_budgets_and_limits(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["keys", "create", "tenant", *args])
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_keys_create_stores_cost_budget_and_model_limits(home: Path) -> None:
    from agentia_tools.runtime import local_keys

    args = ["--cost-budget", "5.00", "--model-limit", "offline=60/min"]
    result = runner.invoke(
        app, ["keys", "create", "tenant", *args, "--model-limit", "offline=9/day"]
    )
    assert result.exit_code == 0, result.output
    (record,) = local_keys.key_ring(home).keys.values()
    assert record.cost_budget_micro_usd_per_day == 5_000_000
    limit = record.model_limits["offline"]
    assert (limit.per_minute, limit.per_day) == (60, 9)
