"""Budget arithmetic, prices, model limits and which requests start runs (no Dapr)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import pytest
from fastapi import Request
from fastapi.routing import APIRoute
from pydantic import ValidationError

from agentia.apikeys import KeyRecord, ModelLimit, describe_limits, parse_model_limits
from agentia.money import cost_micro_usd, micro_usd, usd
from agentia_gateway import runs_api, workflows_api
from agentia_gateway.accounting import (
    DEFAULT_PRICES,
    ModelPrice,
    added,
    day_of,
    merged,
    model_rows,
    over_budget,
    over_model_limit,
    price_of,
    requests_this_minute,
    requests_today,
    seconds_to_midnight,
    seconds_to_next_minute,
    tokens,
)
from agentia_gateway.budgets import creates_run
from agentia_gateway.deps import admit
from agentia_gateway.errors import OverLimit
from agentia_gateway.security import Denied
from agentia_gateway.settings import GatewaySettings

NOON = datetime(2026, 12, 2, 12, 0, 20, tzinfo=UTC)
PRICES = {
    "offline": ModelPrice(input_usd_per_1m=Decimal("1.00"), output_usd_per_1m=Decimal("2.00")),
    "openai": ModelPrice(input_usd_per_1m=Decimal("2.50"), output_usd_per_1m=Decimal("10")),
    "openai:gpt-4o-mini": ModelPrice(
        input_usd_per_1m=Decimal("0.15"), output_usd_per_1m=Decimal("0.60")
    ),
}


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
    assert {k: second[k] for k in ("input_tokens", "output_tokens", "requests", "runs")} == {
        "input_tokens": 13,
        "output_tokens": 5,
        "requests": 3,
        "runs": 2,
    }
    assert tokens(second) == 18
    # No split by model on the event: all of it is counted under "unknown", and costs nothing.
    assert second["models"]["unknown"]["requests"] == 3 and second["cost_micro_usd"] == 0


def test_days_and_reset_are_utc() -> None:
    late = datetime(2026, 11, 24, 23, 59, 30, tzinfo=UTC)
    assert day_of(late) == "2026-11-24"
    assert seconds_to_midnight(late) == 30
    assert seconds_to_next_minute(NOON) == 40


def test_money_is_whole_micro_dollars() -> None:
    assert micro_usd("5.00") == 5_000_000 and micro_usd("0.000001") == 1
    assert usd(1_500_000) == "1.500000" and usd(7) == "0.000007"
    for bad in ("abc", "-1", "0.0000001", "NaN", "inf"):
        with pytest.raises(ValueError):
            micro_usd(bad)
    # Rounded up to the next micro-dollar: 1 token at 0.15 USD per 1M is 0.15 µUSD → 1 µUSD.
    assert cost_micro_usd(1, 150_000) == 1
    assert cost_micro_usd(1_000_000, 150_000) == 150_000
    assert cost_micro_usd(0, 150_000) == 0


def test_models_are_priced_by_name_then_provider_then_star() -> None:
    assert price_of(PRICES, "openai:gpt-4o-mini") is PRICES["openai:gpt-4o-mini"]
    assert price_of(PRICES, "openai:gpt-4o") is PRICES["openai"]
    assert price_of(PRICES, "offline:large") is PRICES["offline"]
    assert price_of(PRICES, "compatible:llama3") is None
    star = {"*": PRICES["offline"]}
    assert price_of(star, "compatible:llama3") is star["*"]
    # The default table prices the offline model (nominally), so cost budgets work offline.
    assert price_of(DEFAULT_PRICES, "offline") is not None


def test_a_run_is_counted_per_model_with_its_cost() -> None:
    usage = {"input_tokens": 3000, "output_tokens": 700, "requests": 3}
    models = {
        "openai:gpt-4o-mini": {"input_tokens": 2000, "output_tokens": 500, "requests": 2},
        "compatible:llama3": {"input_tokens": 1000, "output_tokens": 200, "requests": 1},
    }
    day = added(None, usage, models, PRICES, NOON)
    # 2000 * 0.15 + 500 * 0.60 = 300 + 300 µUSD; llama3 is unpriced.
    assert day["models"]["openai:gpt-4o-mini"]["cost_micro_usd"] == 600
    assert day["models"]["compatible:llama3"]["cost_micro_usd"] == 0
    assert day["cost_micro_usd"] == 600
    again = added(day, usage, models, PRICES, NOON)
    assert again["cost_micro_usd"] == 1200 and again["models"]["compatible:llama3"]["runs"] == 2
    rows = model_rows(again, PRICES)
    assert [r["model"] for r in rows] == ["openai:gpt-4o-mini", "compatible:llama3"]
    assert rows[0]["cost_usd"] == "0.001200" and rows[1]["priced"] is False
    json.dumps(again)  # stored as JSON: ints and text only


def test_the_minute_window_moves_and_the_day_keeps_counting() -> None:
    models = {"offline": {"input_tokens": 10, "output_tokens": 5, "requests": 2}}
    usage = models["offline"]
    day = added(None, usage, models, PRICES, NOON)
    day = added(day, usage, models, PRICES, NOON.replace(second=50))
    assert requests_this_minute(day, "offline", NOON) == 4
    later = NOON.replace(minute=1)
    assert requests_this_minute(day, "offline", later) == 0  # a new minute: nothing yet
    day = added(day, usage, models, PRICES, later)
    assert requests_this_minute(day, "offline", later) == 2
    assert requests_today(day, "offline") == 6
    assert requests_today(day, "openai:gpt-4o") == 0


def test_a_day_kept_in_shards_adds_up_to_the_same_totals() -> None:
    models = {"offline": {"input_tokens": 10, "output_tokens": 5, "requests": 2}}
    usage = models["offline"]
    later = NOON.replace(minute=1)
    whole = None
    shards: list[dict[str, object] | None] = [None, None, None]
    for i, when in enumerate((NOON, NOON, later, later, later)):
        whole = added(whole, usage, models, PRICES, when)
        shards[i % 3] = added(shards[i % 3], usage, models, PRICES, when)
    total = merged([s for s in shards if s is not None])
    assert {k: total[k] for k in ("input_tokens", "runs", "cost_micro_usd", "models")} == {
        k: whole[k] for k in ("input_tokens", "runs", "cost_micro_usd", "models")
    }
    # A shard last written in the earlier minute does not count in this one.
    assert requests_this_minute(total, "offline", later) == 6
    assert requests_today(total, "offline") == 10
    assert merged([])["runs"] == 0


def test_budgets_refuse_with_reason_and_reset() -> None:
    day = added(
        None,
        {"input_tokens": 40, "output_tokens": 20, "requests": 1},
        {"offline": {"input_tokens": 40, "output_tokens": 20, "requests": 1}},
        PRICES,
        NOON,
    )
    assert day["cost_micro_usd"] == 80  # 40 * 1 + 20 * 2 µUSD
    assert over_budget("k1", None, None, day, NOON) is None
    assert over_budget("k1", 61, 81, day, NOON) is None
    refusal = over_budget("k1", 60, None, day, NOON)
    assert refusal is not None and refusal.kind == "tokens"
    assert "token budget of 60 per day used up for key k1" in refusal.reason
    cost = over_budget("k1", None, 80, day, NOON)
    assert cost is not None and cost.kind == "cost"
    assert "cost budget of 0.000080 USD per day used up for key k1" in cost.reason
    assert "(0.000080 USD used today)" in cost.reason
    assert cost.retry_after_s == seconds_to_midnight(NOON)


def test_model_limits_refuse_per_minute_and_per_day() -> None:
    models = {"offline": {"input_tokens": 1, "output_tokens": 1, "requests": 3}}
    day = added(None, models["offline"], models, PRICES, NOON)
    assert over_model_limit("k1", "offline", None, day, NOON) is None
    assert over_model_limit("k1", "offline", ModelLimit(per_minute=4), day, NOON) is None
    minute = over_model_limit("k1", "offline", ModelLimit(per_minute=3), day, NOON)
    assert minute is not None and minute.kind == "model_minute" and minute.retry_after_s == 40
    assert "3 requests per minute to 'offline'" in minute.reason
    # The next minute the window is empty again; the day still counts.
    later = NOON.replace(minute=5)
    assert over_model_limit("k1", "offline", ModelLimit(per_minute=3), day, later) is None
    daily = over_model_limit("k1", "offline", ModelLimit(per_minute=60, per_day=3), day, later)
    assert daily is not None and daily.kind == "model_day"
    assert daily.retry_after_s == seconds_to_midnight(later)
    # Limits are per model: another model's requests do not count.
    assert over_model_limit("k1", "openai:gpt-4o", ModelLimit(per_day=1), day, NOON) is None


def test_model_limits_are_parsed_with_the_bad_one_named() -> None:
    limits = parse_model_limits(["offline=60/min", "offline=1000/day", "openai:gpt-4o=5/day"])
    assert limits == {
        "offline": ModelLimit(per_minute=60, per_day=1000),
        "openai:gpt-4o": ModelLimit(per_day=5),
    }
    assert describe_limits(limits) == "offline=60/min offline=1000/day openai:gpt-4o=5/day"
    for bad in ("offline", "offline=0/min", "offline=5/hour", "=5/min", "bad model=5/min"):
        with pytest.raises(ValueError, match=r"MODEL=N|not a model name"):
            parse_model_limits([bad])


def test_keys_stored_before_budgets_in_money_still_load() -> None:
    old = {
        "id": "0123456789ab",
        "name": "old",
        "scope": "write",
        "sha256": "0" * 64,
        "token_budget_per_day": 5,
        "created_at": "2026-11-01T00:00:00+00:00",
    }
    record = KeyRecord.model_validate(old)
    assert record.cost_budget_micro_usd_per_day is None and record.model_limits == {}
    with pytest.raises(ValidationError):
        KeyRecord.model_validate({**old, "model_limits": {"a b": {"per_day": 1}}})


def _settings(monkeypatch: pytest.MonkeyPatch, prices: str | None) -> GatewaySettings:
    env = {
        "APP_ID": "gateway",
        "APP_PORT": "8000",
        "DAPR_HTTP_PORT": "3500",
        "DAPR_GRPC_PORT": "50001",
        "DAPR_API_TOKEN": "t",
        "APP_API_TOKEN": "t",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    if prices is None:
        monkeypatch.delenv("AGENTIA_MODEL_PRICES", raising=False)
    else:
        monkeypatch.setenv("AGENTIA_MODEL_PRICES", prices)
    return GatewaySettings()


def test_prices_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "offline" in _settings(monkeypatch, None).model_prices
    table = '{"openai:gpt-4o-mini": {"input_usd_per_1m": "0.15", "output_usd_per_1m": "0.6"}}'
    prices = _settings(monkeypatch, table).model_prices
    assert prices["openai:gpt-4o-mini"].cost(1_000_000, 1_000_000) == 750_000
    with pytest.raises(ValidationError, match="more than 6 decimals"):
        _settings(monkeypatch, '{"x": {"input_usd_per_1m": "0.0000001", "output_usd_per_1m": 0}}')
    with pytest.raises(ValidationError, match="input_usd_per_1m"):
        _settings(monkeypatch, '{"x": {"input_usd_per_1m": "-1", "output_usd_per_1m": 0}}')


class _Budgets:
    async def admit(self, owner: Any) -> None:
        raise Denied(429, "token budget used up", {"Retry-After": "9"})


class _Flow:
    budgets = _Budgets()


@pytest.mark.parametrize(
    ("method", "path", "prefer", "expected"),
    [
        ("POST", "/runs", "over-budget=queue", True),
        ("POST", "/runs", "respond-async, Over-Budget=Queue", True),
        ("POST", "/runs", "return=minimal; over-budget=queue", True),
        ("POST", "/runs", None, False),
        ("POST", "/runs", "over-budget=refuse", False),
        ("POST", "/runs/wait", "over-budget=queue", False),  # a client is waiting
        ("POST", "/threads/t1/runs", "over-budget=queue", False),  # the thread's lane
        ("POST", "/workflows", "over-budget=queue", False),
    ],
)
def test_only_background_stateless_runs_over_budget_may_queue(
    method: str, path: str, prefer: str | None, expected: bool
) -> None:
    request = Request({"type": "http", "method": method, "path": path, "headers": []})
    admitted = admit(request, cast(Any, _Flow()), cast(Any, object()), prefer)
    if expected:
        assert asyncio.run(admitted) == "token budget used up"
        return
    with pytest.raises(OverLimit) as refused:
        asyncio.run(admitted)
    assert refused.value.status_code == 429 and refused.value.headers == {"Retry-After": "9"}


def test_every_route_that_starts_work_admits_it_and_no_other() -> None:
    for route in [*runs_api.router.routes, *workflows_api.router.routes]:
        assert isinstance(route, APIRoute)
        admits = any(d.call is admit for d in route.dependant.dependencies)
        for method in route.methods:
            assert admits is creates_run(method, route.path), (method, route.path)
