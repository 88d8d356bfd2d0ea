"""Model usage of the calling key, per UTC day and per model, against its budgets and limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse

from agentia.contracts.gateway import BudgetAdmitted
from agentia.money import usd
from agentia_gateway.accounting import (
    day_of,
    model_rows,
    requests_this_minute,
    requests_today,
    tokens,
)
from agentia_gateway.deps import Auth, Caller, Flow
from agentia_gateway.schemas import ERRORS, ID_PATTERN
from agentia_gateway.security import Denied

router = APIRouter(tags=["Usage"], responses=ERRORS)
internal = APIRouter(include_in_schema=False)


def _money(micro: int | None) -> str | None:
    return None if micro is None else usd(micro)


@router.get("/usage")
async def usage(
    principal: Caller, flow: Flow, days: int = Query(default=7, ge=1, le=90)
) -> dict[str, Any]:
    """Tokens, model requests, runs and their cost counted for this key, today first, in
    total and per model; its budgets and model limits with what is left of them. Money is
    given in USD (text, six decimals) and in whole micro-dollars."""
    budgets = flow.budgets
    now = datetime.now(UTC)
    wanted = [day_of(now - timedelta(days=i)) for i in range(days)]
    found = await budgets.days(principal.id, wanted)
    today = found[wanted[0]]
    used_today = tokens(today)
    budget = principal.token_budget_per_day
    cost_budget = principal.cost_budget_micro_usd_per_day
    spent = int(today.get("cost_micro_usd", 0))
    cost_left = None if cost_budget is None else max(0, cost_budget - spent)
    return {
        "key_id": principal.id,
        "token_budget_per_day": budget,
        "tokens_used_today": used_today,
        "tokens_left_today": None if budget is None else max(0, budget - used_today),
        "cost_budget_per_day_usd": _money(cost_budget),
        "cost_budget_per_day_micro_usd": cost_budget,
        "cost_used_today_usd": usd(spent),
        "cost_used_today_micro_usd": spent,
        "cost_left_today_usd": _money(cost_left),
        "model_limits": {
            model: {
                "per_minute": limit.per_minute,
                "per_day": limit.per_day,
                "requests_this_minute": requests_this_minute(today, model, now),
                "requests_today": requests_today(today, model),
            }
            for model, limit in sorted(principal.model_limits.items())
        },
        "days": [
            {
                "day": d,
                "tokens": tokens(found[d]),
                "input_tokens": int(found[d].get("input_tokens", 0)),
                "output_tokens": int(found[d].get("output_tokens", 0)),
                "requests": int(found[d].get("requests", 0)),
                "runs": int(found[d].get("runs", 0)),
                "cost_micro_usd": int(found[d].get("cost_micro_usd", 0)),
                "cost_usd": usd(int(found[d].get("cost_micro_usd", 0))),
                "models": model_rows(found[d], budgets.prices),
            }
            for d in wanted
        ],
    }


@internal.get("/internal/budgets/{key_id}")
async def admission(
    key_id: str,
    auth: Auth,
    flow: Flow,
    agent_id: str | None = Query(default=None, pattern=ID_PATTERN, max_length=128),
) -> JSONResponse:
    """May key ``key_id`` start a run (of agent ``agent_id``, whose model's limits apply) now?
    For runs the gateway does not start itself (a schedule's): 200, or the same 429 with
    reason and Retry-After a client would get."""
    principal = auth.principal(key_id)
    if principal is None:
        raise HTTPException(404, f"no key '{key_id}' (revoked?)")
    # An agent no one knows has no model to limit (its run fails as an unknown agent).
    model = (await flow.agents()).get(agent_id) if agent_id is not None else None
    try:
        await flow.budgets.admit(principal, model)
    except Denied as denied:
        return JSONResponse({"detail": denied.reason}, status_code=429, headers=denied.headers)
    return JSONResponse(BudgetAdmitted(key_id=key_id).model_dump())
