"""May this key start a run of this agent now? The gateway owns budgets and model limits;
the scheduler asks it (Dapr invocation, ``GET internal/budgets/{key}``) before a cron's fire
and before a drain starts a queued run."""

from __future__ import annotations

import logging

import httpx

from agentia import names
from agentia.contracts import gateway as gateway_api
from agentia.dapr import DaprClient

log = logging.getLogger(__name__)


class OwnerGone(Exception):
    """The API key that owns the work was revoked: there is nobody to run it for."""


async def budget_refusal(client: DaprClient, owner: str, agent_id: str) -> str | None:
    """Why ``owner`` may not start a run of ``agent_id`` now (over a budget or the agent's
    model limit), or None; raises :class:`OwnerGone` for a revoked key. When the gateway
    cannot answer the run starts, as the gateway itself lets runs through when usage cannot
    be read; that is logged."""
    # The agent names the model whose limits apply, as for a run a client starts.
    try:
        resp = await client.invoke(
            names.GATEWAY, gateway_api.budget_path(owner, agent_id), http_method="GET"
        )
    except httpx.HTTPError as exc:
        log.warning("budget not checked", extra={"why": type(exc).__name__})
        return None
    if resp.status_code == 429:
        return str(resp.json().get("detail", "over budget"))
    if resp.status_code == 404:
        raise OwnerGone(owner)
    if resp.status_code != 200:
        log.warning("budget not checked", extra={"why": f"gateway answered {resp.status_code}"})
    return None
