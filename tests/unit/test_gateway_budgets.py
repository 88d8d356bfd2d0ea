"""Budget arithmetic and which requests start runs (no Dapr)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentia_gateway.budgets import added, creates_run, day_of, seconds_to_midnight, tokens


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/runs", True),
        ("POST", "/runs/wait", True),
        ("POST", "/runs/stream", True),
        ("POST", "/threads/t1/runs", True),
        ("POST", "/threads/t1/runs/stream", True),
        ("POST", "/runs/search", False),
        ("POST", "/threads/t1/runs/r1/cancel", False),
        ("GET", "/threads/t1/runs", False),
        ("POST", "/runs/crons", False),
        ("POST", "/workflows", True),
        ("GET", "/workflows", False),
        ("POST", "/workflows/w1/events/approval", False),
    ],
)
def test_creates_run(method: str, path: str, expected: bool) -> None:
    assert creates_run(method, path) is expected


def test_usage_adds_up_and_counts_runs() -> None:
    first = added(None, {"input_tokens": 10, "output_tokens": 5, "requests": 1})
    second = added(first, {"input_tokens": 3, "output_tokens": None, "requests": 2})
    assert second == {"input_tokens": 13, "output_tokens": 5, "requests": 3, "runs": 2}
    assert tokens(second) == 18


def test_days_and_reset_are_utc() -> None:
    late = datetime(2026, 11, 24, 23, 59, 30, tzinfo=UTC)
    assert day_of(late) == "2026-11-24"
    assert seconds_to_midnight(late) == 30
