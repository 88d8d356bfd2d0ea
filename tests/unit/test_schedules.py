"""Schedules: validation with clear reasons, Dapr job bodies, ticks and run ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from agentia.contracts.scheduler import ScheduleError, ScheduleRequest, parse_cron
from agentia_scheduler.schedules import build, dapr_job, next_fire, run_id, tick_of

NOW = datetime(2026, 3, 28, 23, 58, 30, 250_000, tzinfo=UTC)
RUN = {"agent_id": "assistant", "input": "hi"}


def make(**fields: object) -> ScheduleRequest:
    return ScheduleRequest.model_validate({"target": RUN, **fields})


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"cron": "61 * * * *"}, "cron: '61 * * * *': Bad minute"),
        ({"cron": "* * *"}, "has 3 fields"),
        ({"cron": "*/99 * * * * *"}, "seconds out of range"),
        ({"cron": "* * * * *", "timezone": "Mars/Base"}, "unknown time zone 'Mars/Base'"),
        ({}, "give exactly one of cron, interval_s, at (got none)"),
        ({"cron": "* * * * *", "interval_s": 5}, "give exactly one of"),
        ({"interval_s": 0.5}, "greater than or equal to 1"),
    ],
)
def test_bad_schedules_say_why(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        make(**fields)
    assert reason in str(info.value)


def test_one_shot_in_the_past_is_refused() -> None:
    with pytest.raises(ScheduleError, match=r"at: .* is in the past"):
        build(make(at="2020-01-01T00:00:00"), NOW)


def test_cron_job_carries_its_time_zone_and_seconds() -> None:
    schedule = build(make(cron="30 9 * * 1-5", timezone="Europe/Paris", schedule_id="w"), NOW)
    body = dapr_job(schedule)
    assert body["schedule"] == "CRON_TZ=Europe/Paris 0 30 9 * * 1-5"
    assert body["data"]["schedule_id"] == "w"
    assert parse_cron("*/20 * * * * *")[0] == [0, 20, 40]
    assert parse_cron("@hourly") == ([0], "0 * * * *")


def test_interval_ticks_are_anchored_and_deterministic() -> None:
    schedule = build(make(interval_s=10, schedule_id="every"), NOW)
    body = dapr_job(schedule)
    assert body["schedule"] == "@every 10s"
    assert body["dueTime"] == "2026-03-28T23:58:32+00:00"
    late = schedule.anchor + timedelta(seconds=21.7)  # the third fire, delivered late
    assert tick_of(schedule, late) == schedule.anchor + timedelta(seconds=20)
    assert run_id("every", tick_of(schedule, late)) == "sched-every-20260328T235852Z"
    assert next_fire(schedule, late) == schedule.anchor + timedelta(seconds=30)


def test_cron_tick_in_a_time_zone_across_dst() -> None:
    # Paris moves from +01:00 to +02:00 at 02:00 local on 2026-03-29.
    schedule = build(make(cron="0 * * * *", timezone="Europe/Paris"), NOW)
    at_three = datetime(2026, 3, 29, 1, 0, 0, 400_000, tzinfo=UTC)  # 03:00 CEST
    assert tick_of(schedule, at_three) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert next_fire(schedule, at_three) == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)


def test_six_field_cron_tick_and_next() -> None:
    schedule = build(make(cron="*/2 * * * * *"), NOW)
    assert tick_of(schedule, NOW) == datetime(2026, 3, 28, 23, 58, 30, tzinfo=UTC)
    assert next_fire(schedule, NOW) == datetime(2026, 3, 28, 23, 58, 32, tzinfo=UTC)
