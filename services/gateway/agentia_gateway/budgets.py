"""Per-key budgets and model limits: each run's model usage (from the model responses,
reported on the run's final event, split by model) is counted per UTC day in the state store,
priced, and a key whose day's tokens or money is used up, or whose requests to the run's model
are at their limit, gets a 429 with the reason and the time until it resets, before any work
starts. The arithmetic is in ``accounting.py``.

Counting is exactly once per run: the day's totals and a per-run marker are written in one
state transaction, so a redelivered final event finds the marker and adds nothing. A key's
day is kept in ``USAGE_SHARDS`` records, a run counted in the one its id hashes to, so runs
ending at once rarely race on one record; reads add the shards up (one bulk read).
"""

from __future__ import annotations

import logging
import re
import zlib
from datetime import UTC, datetime
from typing import Any

import httpx

from agentia import names
from agentia.dapr import DaprClient, DaprError, ETagMismatch
from agentia_gateway import metrics
from agentia_gateway.accounting import (
    ModelPrice,
    Refusal,
    added,
    by_model,
    day_of,
    merged,
    over_budget,
    over_model_limit,
    run_cost,
)
from agentia_gateway.run_store import ATTEMPTS, Contended
from agentia_gateway.security import Denied, Principal

log = logging.getLogger(__name__)
RUN_PATHS = re.compile(r"^(/threads/[^/]+)?/runs(/wait|/stream|/batch)?$")
# Starting a workflow (a long-lived agent) spends tokens too.
WORKFLOW_START = "/workflows"


USAGE_SHARDS = 8


def totals_key(owner: str, day: str, shard: int = 0) -> str:
    """Shard 0 has the name a day's single record had before shards."""
    return f"gw-usage:{owner}:{day}" + (f":{shard}" if shard else "")


def shard_keys(owner: str, day: str) -> list[str]:
    return [totals_key(owner, day, i) for i in range(USAGE_SHARDS)]


def run_shard(run_id: str) -> int:
    return zlib.crc32(run_id.encode()) % USAGE_SHARDS


def marker_key(run_id: str) -> str:
    return f"gw-usage-run:{run_id}"


def workflow_owner_key(instance_id: str) -> str:
    return f"gw-wf-owner:{instance_id}"


def owner_candidates(instance_id: str) -> list[str]:
    """The instance id and the ids it may be the child of, longest first: children are named
    after their parent (FanOut's ``{parent}-{i}-{agent}``, RecurringAgent's
    ``{parent}-run-{n}``), and the nearest ancestor with an owner owns the child."""
    found = [instance_id]
    cut = instance_id.rfind("-")
    while cut > 0:
        found.append(instance_id[:cut])
        cut = instance_id.rfind("-", 0, cut)
    return found


def creates_run(method: str, path: str) -> bool:
    """Whether a request starts work that spends tokens (its route must admit it)."""
    return method == "POST" and (RUN_PATHS.match(path) is not None or path == WORKFLOW_START)


# A client's ``Prefer: over-budget=queue`` (RFC 7240): queue a background run over budget on
# the broker (``runs.batch``, started by a drain once the budget allows) instead of a 429.
QUEUE_PREFERENCE = "over-budget=queue"
QUEUE_PATH = "/runs"


def prefers_queue(prefer: str | None) -> bool:
    tokens_ = [p.strip().lower() for part in (prefer or "").split(",") for p in part.split(";")]
    return QUEUE_PREFERENCE in tokens_


def refused(refusal: Refusal) -> Denied:
    metrics.BUDGET_REFUSED.labels(refusal.kind).inc()
    return Denied(429, refusal.reason, {"Retry-After": str(refusal.retry_after_s)})


class Budgets:
    def __init__(self, client: DaprClient, prices: dict[str, ModelPrice]) -> None:
        self.client, self.prices = client, prices

    async def day(self, owner: str, day: str) -> dict[str, Any]:
        return (await self.days(owner, [day]))[day]

    async def days(self, owner: str, days: list[str]) -> dict[str, dict[str, Any]]:
        keys = {d: shard_keys(owner, d) for d in days}
        found = await self.client.get_bulk_state(
            names.STATE_STORE, [k for per_day in keys.values() for k in per_day]
        )
        return {d: merged([dict(found[k].value) for k in keys[d] if k in found]) for d in days}

    async def _today(self, principal: Principal, now: datetime) -> dict[str, Any] | None:
        try:
            return await self.day(principal.id, day_of(now))
        except (DaprError, httpx.HTTPError) as exc:
            # The count is unreadable (state store down): the run would fail on the same store
            # anyway; let it through rather than turn an outage into a budget refusal.
            log.warning("budget not checked: usage unreadable", extra={"why": str(exc)[:200]})
            return None

    async def admit(self, principal: Principal, model: str | None = None) -> None:
        """Refuse a new run when the key's token or cost budget for today is used up, or (with
        the ``model`` the run would use) when its requests to that model are at their limit."""
        limit = principal.model_limits.get(model) if model is not None else None
        budgets = (principal.token_budget_per_day, principal.cost_budget_micro_usd_per_day)
        if budgets == (None, None) and limit is None:
            return
        now = datetime.now(UTC)
        totals = await self._today(principal, now)
        if totals is None:
            return
        refusal = over_budget(principal.id, *budgets, totals, now)
        if refusal is None and model is not None:
            refusal = over_model_limit(principal.id, model, limit, totals, now)
        if refusal is not None:
            raise refused(refusal)

    async def admit_model(self, principal: Principal, model: str) -> None:
        """Only the model limit (the budgets were checked at the door)."""
        limit = principal.model_limits.get(model)
        if limit is None:
            return
        now = datetime.now(UTC)
        totals = await self._today(principal, now)
        if totals is not None and (
            refusal := over_model_limit(principal.id, model, limit, totals, now)
        ):
            raise refused(refusal)

    async def count(
        self,
        owner: str,
        run_id: str,
        usage: dict[str, Any],
        models: dict[str, Any] | None = None,
        runs: int = 1,
        first: bool = False,
    ) -> bool:
        """Add one run's usage to its owner's day, once; False when it was counted before.
        (``run_id`` is a workflow turn's usage id for a turn, counted with ``runs=0``.)
        ``first``: the caller has just settled the run, so it was very likely not counted
        yet; anyone else looks for the marker first (one read, not a failed transaction)."""
        marker = marker_key(run_id)
        if not first and await self.client.get_state(names.STATE_STORE, marker) is not None:
            return False
        for _ in range(ATTEMPTS):
            now = datetime.now(UTC)
            day = day_of(now)
            key = totals_key(owner, day, run_shard(run_id))
            item = await self.client.get_state(names.STATE_STORE, key)
            try:
                await self.client.transact(
                    names.STATE_STORE_CREATE,
                    [
                        {"key": marker, "value": {"owner": owner, "day": day}, "first_write": True},
                        {
                            "key": key,
                            "value": added(
                                item.value if item else None, usage, models, self.prices, now, runs
                            ),
                            "etag": item.etag if item else None,
                            "first_write": item is None,
                        },
                    ],
                )
            except ETagMismatch:
                # Counted before (the marker is there), or another run of this owner counted
                # in this shard at the same moment: re-read.
                if await self.client.get_state(names.STATE_STORE, marker) is not None:
                    return False
                continue
            self._observe(owner, usage, models, runs)
            return True
        raise Contended(totals_key(owner, "today", run_shard(run_id)))

    def _observe(
        self, owner: str, usage: dict[str, Any], models: dict[str, Any] | None, runs: int
    ) -> None:
        for kind in ("input", "output"):
            metrics.TOKENS_USED.labels(owner, kind).inc(int(usage.get(f"{kind}_tokens") or 0))
        metrics.RUNS_COUNTED.labels(owner).inc(runs)
        split = by_model(usage, models)
        costs = run_cost(self.prices, split)
        for model, row in split.items():
            for kind in ("input", "output"):
                metrics.MODEL_TOKENS.labels(owner, model, kind).inc(row[f"{kind}_tokens"])
            metrics.MODEL_REQUESTS.labels(owner, model).inc(row["requests"])
            metrics.COST.labels(owner, model).inc(costs[model])

    # -- workflows: their model turns count against the key that started them ---------------

    async def own_workflow(self, owner: str, instance_id: str) -> dict[str, Any] | None:
        """Record ``owner`` as the key of workflow ``instance_id`` (before it starts, so its
        first turn finds it); returns the previous record, for :meth:`disown_workflow`."""
        key = workflow_owner_key(instance_id)
        item = await self.client.get_state(names.STATE_STORE, key)
        await self.client.save_state(names.STATE_STORE, key, {"owner": owner})
        return dict(item.value) if item is not None else None

    async def disown_workflow(self, instance_id: str, previous: dict[str, Any] | None) -> None:
        """The start failed: the instance's owner is as it was."""
        key = workflow_owner_key(instance_id)
        if previous is None:
            await self.client.delete_state(names.STATE_STORE, key)
        else:
            await self.client.save_state(names.STATE_STORE, key, previous)

    async def workflow_owner(self, instance_id: str) -> str | None:
        candidates = owner_candidates(instance_id)
        found = await self.client.get_bulk_state(
            names.STATE_STORE, [workflow_owner_key(c) for c in candidates]
        )
        for c in candidates:
            item = found.get(workflow_owner_key(c))
            if item is not None and item.value.get("owner"):
                return str(item.value["owner"])
        return None

    async def count_turn(self, usage_id: str, data: dict[str, Any]) -> bool:
        """A workflow's model turn (a ``model.usage`` event): counted once for the key that
        started the workflow; a workflow no key started (a schedule's) is not counted."""
        owner = await self.workflow_owner(str(data.get("instance_id", "")))
        if owner is None or not data.get("usage"):
            return False
        return await self.count(owner, usage_id, data["usage"], data.get("models"), runs=0)
