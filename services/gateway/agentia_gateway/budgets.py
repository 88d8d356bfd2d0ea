"""Per-key token budgets: each run's model usage (from the model responses, reported on the
run's final event) is counted per UTC day in the state store, and a key whose day's budget is
used up gets a 429 with the reason and the time until it resets, before any work starts.

Counting is exactly once per run: the day's totals and a per-run marker are written in one
state transaction, so a redelivered final event finds the marker and adds nothing.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from agentia import names
from agentia.dapr import DaprClient, DaprError, ETagMismatch
from agentia_gateway import metrics
from agentia_gateway.run_store import ATTEMPTS, Contended
from agentia_gateway.security import Denied, Principal

log = logging.getLogger(__name__)
FIELDS = ("input_tokens", "output_tokens", "requests")
EMPTY: dict[str, int] = {"input_tokens": 0, "output_tokens": 0, "requests": 0, "runs": 0}
RUN_PATHS = re.compile(r"^(/threads/[^/]+)?/runs(/wait|/stream)?$")
# Starting a workflow (a long-lived agent) spends tokens too.
WORKFLOW_START = "/workflows"


def day_of(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def totals_key(owner: str, day: str) -> str:
    return f"gw-usage:{owner}:{day}"


def marker_key(run_id: str) -> str:
    return f"gw-usage-run:{run_id}"


def tokens(totals: dict[str, Any]) -> int:
    return int(totals.get("input_tokens", 0)) + int(totals.get("output_tokens", 0))


def added(totals: dict[str, Any] | None, usage: dict[str, Any]) -> dict[str, Any]:
    """The day's totals with one more run's usage."""
    new = {f: int((totals or {}).get(f, 0)) + int(usage.get(f) or 0) for f in FIELDS}
    new["runs"] = int((totals or {}).get("runs", 0)) + 1
    return new


def creates_run(method: str, path: str) -> bool:
    return method == "POST" and (RUN_PATHS.match(path) is not None or path == WORKFLOW_START)


def seconds_to_midnight(now: datetime) -> int:
    midnight = (now.astimezone(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return max(1, int((midnight - now).total_seconds()))


class Budgets:
    def __init__(self, client: DaprClient) -> None:
        self.client = client

    async def day(self, owner: str, day: str) -> dict[str, Any]:
        item = await self.client.get_state(names.STATE_STORE, totals_key(owner, day))
        return dict(item.value) if item else dict(EMPTY)

    async def days(self, owner: str, days: list[str]) -> dict[str, dict[str, Any]]:
        found = await self.client.get_bulk_state(
            names.STATE_STORE, [totals_key(owner, d) for d in days]
        )
        return {
            d: dict(found[k].value) if (k := totals_key(owner, d)) in found else dict(EMPTY)
            for d in days
        }

    async def admit(self, principal: Principal) -> None:
        """Refuse a new run when the key's budget for today is used up."""
        budget = principal.token_budget_per_day
        if budget is None:
            return
        now = datetime.now(UTC)
        try:
            used = tokens(await self.day(principal.id, day_of(now)))
        except (DaprError, httpx.HTTPError) as exc:
            # The count is unreadable (state store down): the run would fail on the same store
            # anyway; let it through rather than turn an outage into a budget refusal.
            log.warning("budget not checked: usage unreadable", extra={"why": str(exc)[:200]})
            return
        if used >= budget:
            wait = seconds_to_midnight(now)
            raise Denied(
                429,
                f"token budget of {budget} per day used up for key {principal.id} "
                f"({used} tokens used today); it resets at 00:00 UTC, in {wait} s",
                {"Retry-After": str(wait)},
            )

    async def count(self, owner: str, run_id: str, usage: dict[str, Any]) -> bool:
        """Add one run's usage to its owner's day, once; False when it was counted before."""
        marker = marker_key(run_id)
        for _ in range(ATTEMPTS):
            if await self.client.get_state(names.STATE_STORE, marker) is not None:
                return False
            day = day_of(datetime.now(UTC))
            key = totals_key(owner, day)
            item = await self.client.get_state(names.STATE_STORE, key)
            try:
                await self.client.transact(
                    names.STATE_STORE_CREATE,
                    [
                        {"key": marker, "value": {"owner": owner, "day": day}, "first_write": True},
                        {
                            "key": key,
                            "value": added(item.value if item else None, usage),
                            "etag": item.etag if item else None,
                            "first_write": item is None,
                        },
                    ],
                )
                for kind in ("input", "output"):
                    metrics.TOKENS_USED.labels(owner, kind).inc(
                        int(usage.get(f"{kind}_tokens") or 0)
                    )
                metrics.RUNS_COUNTED.labels(owner).inc()
                return True
            except ETagMismatch:
                continue  # another run of this owner counted at the same moment: re-read
        raise Contended(totals_key(owner, "today"))
