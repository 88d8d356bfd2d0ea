"""May this key start a run of this agent now? The gateway owns budgets and model limits;
the scheduler asks it (Dapr invocation, ``GET internal/budgets/{key}``) before a cron's fire
and before a drain starts a queued run."""

from __future__ import annotations

import logging

import httpx

from agentia.contracts import InvokeError
from agentia.contracts.gateway import GatewayClient
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
        await GatewayClient(client.call).admit(owner, agent_id)
    except httpx.HTTPError as exc:
        log.warning("budget not checked", extra={"why": type(exc).__name__})
    except InvokeError as exc:
        if exc.status == 429:
            return exc.reason or "over budget"
        if exc.status == 404:
            raise OwnerGone(owner) from None
        log.warning("budget not checked", extra={"why": f"gateway answered {exc.status}"})
    return None
