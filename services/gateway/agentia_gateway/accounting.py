"""What a key's runs used and what that cost, per UTC day and per model, and whether the key
may start another run: the arithmetic of budgets, with no Dapr (``budgets.py`` does the I/O).

A key's day is one document:

    {"input_tokens": .., "output_tokens": .., "requests": .., "runs": .., "cost_micro_usd": ..,
     "models": {"offline": {"input_tokens": .., "output_tokens": .., "requests": ..,
                            "runs": .., "cost_micro_usd": ..}},
     "minute": {"offline": {"at": "2026-12-02T13:45", "requests": ..}}}

``minute`` keeps, per model, the model requests counted in the latest UTC minute: enough for
a fixed one-minute window. Money is whole micro-dollars (``agentia.money``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentia.apikeys import ModelLimit
from agentia.money import cost_micro_usd, micro_usd, usd

FIELDS = ("input_tokens", "output_tokens", "requests")
EMPTY: dict[str, int] = {
    "input_tokens": 0,
    "output_tokens": 0,
    "requests": 0,
    "runs": 0,
    "cost_micro_usd": 0,
}
# Usage reported without a split by model (a runner from before the split): counted here.
UNKNOWN_MODEL = "unknown"
ANY_MODEL = "*"


class ModelPrice(BaseModel):
    """What one model costs, in USD per million tokens (text: no binary floats)."""

    model_config = ConfigDict(extra="forbid")

    input_usd_per_1m: Decimal = Field(ge=0, description="USD per 1M input tokens.")
    output_usd_per_1m: Decimal = Field(ge=0, description="USD per 1M output tokens.")

    @field_validator("input_usd_per_1m", "output_usd_per_1m")
    @classmethod
    def _whole_micro(cls, value: Decimal) -> Decimal:
        micro_usd(value)  # at most 6 decimals: a whole number of micro-dollars
        return value

    def cost(self, input_tokens: int, output_tokens: int) -> int:
        """In micro-dollars, each side rounded up to a whole micro-dollar."""
        return cost_micro_usd(input_tokens, micro_usd(self.input_usd_per_1m)) + cost_micro_usd(
            output_tokens, micro_usd(self.output_usd_per_1m)
        )


# The offline model is priced (nominally: it costs nothing to run) so that cost budgets can be
# tried, and are tested, with no real model. Real models are priced by AGENTIA_MODEL_PRICES.
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "offline": ModelPrice(input_usd_per_1m=Decimal("1.00"), output_usd_per_1m=Decimal("2.00"))
}


def price_of(prices: dict[str, ModelPrice], model: str) -> ModelPrice | None:
    """The model's price: its own, else its provider's (``openai`` for ``openai:gpt-4o``),
    else the ``*`` entry; None when unpriced (it then costs nothing)."""
    for name in (model, model.partition(":")[0], ANY_MODEL):
        if name in prices:
            return prices[name]
    return None


def minute_of(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def day_of(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def seconds_to_midnight(now: datetime) -> int:
    midnight = (now.astimezone(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return max(1, int((midnight - now).total_seconds()))


def seconds_to_next_minute(now: datetime) -> int:
    nxt = (now.astimezone(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return max(1, int((nxt - now).total_seconds() + 0.999))


def tokens(totals: dict[str, Any]) -> int:
    return int(totals.get("input_tokens", 0)) + int(totals.get("output_tokens", 0))


def by_model(usage: dict[str, Any], models: dict[str, Any] | None) -> dict[str, dict[str, int]]:
    """A run's usage split by model; all of it under ``unknown`` when the event has no split."""
    if models:
        return {
            str(m): {f: int((row or {}).get(f) or 0) for f in FIELDS} for m, row in models.items()
        }
    return {UNKNOWN_MODEL: {f: int(usage.get(f) or 0) for f in FIELDS}}


def run_cost(prices: dict[str, ModelPrice], split: dict[str, dict[str, int]]) -> dict[str, int]:
    """What each model's share of a run cost, in micro-dollars."""
    costs = {}
    for model, row in split.items():
        price = price_of(prices, model)
        costs[model] = price.cost(row["input_tokens"], row["output_tokens"]) if price else 0
    return costs


def added(
    totals: dict[str, Any] | None,
    usage: dict[str, Any],
    models: dict[str, Any] | None = None,
    prices: dict[str, ModelPrice] | None = None,
    now: datetime | None = None,
    runs: int = 1,
) -> dict[str, Any]:
    """The day's totals with one more run's usage, its cost and its per-model rows (a
    workflow's model turn adds usage but no run: ``runs=0``)."""
    old = totals or {}
    split = by_model(usage, models)
    costs = run_cost(prices or {}, split)
    new: dict[str, Any] = {f: int(old.get(f, 0)) + int(usage.get(f) or 0) for f in FIELDS}
    new["runs"] = int(old.get("runs", 0)) + runs
    new["cost_micro_usd"] = int(old.get("cost_micro_usd", 0)) + sum(costs.values())
    rows = {m: dict(r) for m, r in (old.get("models") or {}).items()}
    minute = {m: dict(w) for m, w in (old.get("minute") or {}).items()}
    at = minute_of(now or datetime.now(UTC))
    for model, row in split.items():
        cur = rows.get(model, {})
        rows[model] = {f: int(cur.get(f, 0)) + row[f] for f in FIELDS}
        rows[model]["runs"] = int(cur.get("runs", 0)) + runs
        rows[model]["cost_micro_usd"] = int(cur.get("cost_micro_usd", 0)) + costs[model]
        window = minute.get(model, {})
        before = int(window.get("requests", 0)) if window.get("at") == at else 0
        minute[model] = {"at": at, "requests": before + row["requests"]}
    new["models"] = rows
    new["minute"] = minute
    return new


def merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One day's totals from its shards (each written by the runs that hash to it): counts
    and costs add up; a model's requests this minute are those of the latest minute seen."""
    total: dict[str, Any] = {f: sum(int(p.get(f, 0)) for p in parts) for f in EMPTY}
    rows: dict[str, dict[str, int]] = {}
    minute: dict[str, dict[str, Any]] = {}
    for part in parts:
        for model, row in (part.get("models") or {}).items():
            cur = rows.setdefault(model, {})
            for f, v in row.items():
                cur[f] = cur.get(f, 0) + int(v)
        for model, window in (part.get("minute") or {}).items():
            seen = minute.get(model)
            if seen is None or window.get("at", "") > seen["at"]:
                minute[model] = {"at": window.get("at", ""), "requests": 0}
                seen = minute[model]
            if window.get("at") == seen["at"]:
                seen["requests"] += int(window.get("requests", 0))
    if rows:
        total["models"] = rows
    if minute:
        total["minute"] = minute
    return total


def requests_this_minute(totals: dict[str, Any], model: str, now: datetime) -> int:
    window = (totals.get("minute") or {}).get(model) or {}
    return int(window.get("requests", 0)) if window.get("at") == minute_of(now) else 0


def requests_today(totals: dict[str, Any], model: str) -> int:
    return int(((totals.get("models") or {}).get(model) or {}).get("requests", 0))


@dataclass(frozen=True)
class Refusal:
    """Why a key may not start a run now, and when to try again."""

    kind: str  # tokens | cost | model_minute | model_day
    reason: str
    retry_after_s: int


def over_budget(
    key_id: str,
    token_budget: int | None,
    cost_budget_micro_usd: int | None,
    totals: dict[str, Any],
    now: datetime,
) -> Refusal | None:
    """The day's token or cost budget used up?"""
    wait = seconds_to_midnight(now)
    used = tokens(totals)
    if token_budget is not None and used >= token_budget:
        return Refusal(
            "tokens",
            f"token budget of {token_budget} per day used up for key {key_id} "
            f"({used} tokens used today); it resets at 00:00 UTC, in {wait} s",
            wait,
        )
    spent = int(totals.get("cost_micro_usd", 0))
    if cost_budget_micro_usd is not None and spent >= cost_budget_micro_usd:
        return Refusal(
            "cost",
            f"cost budget of {usd(cost_budget_micro_usd)} USD per day used up for key {key_id} "
            f"({usd(spent)} USD used today); it resets at 00:00 UTC, in {wait} s",
            wait,
        )
    return None


def over_model_limit(
    key_id: str, model: str, limit: ModelLimit | None, totals: dict[str, Any], now: datetime
) -> Refusal | None:
    """The key's requests to ``model`` this minute or today at their limit?"""
    if limit is None:
        return None
    if limit.per_day is not None and (used := requests_today(totals, model)) >= limit.per_day:
        wait = seconds_to_midnight(now)
        return Refusal(
            "model_day",
            f"model limit of {limit.per_day} requests per day to '{model}' reached for key "
            f"{key_id} ({used} today); it resets at 00:00 UTC, in {wait} s",
            wait,
        )
    if (
        limit.per_minute is not None
        and (used := requests_this_minute(totals, model, now)) >= limit.per_minute
    ):
        wait = seconds_to_next_minute(now)
        return Refusal(
            "model_minute",
            f"model limit of {limit.per_minute} requests per minute to '{model}' reached for "
            f"key {key_id} ({used} this minute); retry in {wait} s",
            wait,
        )
    return None


def model_rows(totals: dict[str, Any], prices: dict[str, ModelPrice]) -> list[dict[str, Any]]:
    """A day's per-model rows as ``GET /usage`` shows them, costliest first."""
    rows = []
    for model, row in (totals.get("models") or {}).items():
        cost = int(row.get("cost_micro_usd", 0))
        rows.append(
            {
                "model": model,
                **{f: int(row.get(f, 0)) for f in (*FIELDS, "runs")},
                "tokens": tokens(row),
                "cost_micro_usd": cost,
                "cost_usd": usd(cost),
                "priced": price_of(prices, model) is not None,
            }
        )
    return sorted(rows, key=lambda r: (-r["cost_micro_usd"], -r["tokens"], r["model"]))
