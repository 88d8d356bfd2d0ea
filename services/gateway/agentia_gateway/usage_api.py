"""Model usage of the calling key, per UTC day, against its token budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from agentia_gateway.budgets import Budgets, day_of, tokens
from agentia_gateway.schemas import ERRORS
from agentia_gateway.security import Authenticator, Denied

router = APIRouter(tags=["Usage"], responses=ERRORS)
internal = APIRouter(include_in_schema=False)


@router.get("/usage")
async def usage(request: Request, days: int = Query(default=7, ge=1, le=90)) -> dict[str, Any]:
    """Tokens, model requests and runs counted for this key, today first."""
    principal = request.state.principal
    budgets: Budgets = request.app.state.runs.budgets
    today = datetime.now(UTC)
    wanted = [day_of(today - timedelta(days=i)) for i in range(days)]
    found = await budgets.days(principal.id, wanted)
    used_today = tokens(found[wanted[0]])
    budget = principal.token_budget_per_day
    return {
        "key_id": principal.id,
        "token_budget_per_day": budget,
        "tokens_used_today": used_today,
        "tokens_left_today": None if budget is None else max(0, budget - used_today),
        "days": [{"day": d, "tokens": tokens(found[d]), **found[d]} for d in wanted],
    }


@internal.get("/internal/budgets/{key_id}")
async def admission(key_id: str, request: Request) -> JSONResponse:
    """May key ``key_id`` start a run now? For runs the gateway does not start itself (a
    schedule's): 200, or the same 429 with reason and Retry-After a client would get."""
    auth: Authenticator = request.app.state.auth
    principal = auth.principal(key_id)
    if principal is None:
        raise HTTPException(404, f"no key '{key_id}' (revoked?)")
    budgets: Budgets = request.app.state.runs.budgets
    try:
        await budgets.admit(principal)
    except Denied as denied:
        return JSONResponse({"detail": denied.reason}, status_code=429, headers=denied.headers)
    return JSONResponse({"key_id": key_id, "admitted": True})
