"""The CLI refuses bad arguments with a clear message and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentia.cli.main import app

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
