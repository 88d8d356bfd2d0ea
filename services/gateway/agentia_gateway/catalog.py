"""The gateway's copy of the agent catalog, so that it accepts runs while agent-runner is
down: agent-runner publishes its definitions on ``agents.catalog`` (at start and now and
then); the gateway keeps the newest in its state store (``gw-agents``) and in memory.

Only a gateway that has never seen a catalog asks agent-runner (a new mesh whose first
catalog was published before the gateway's queue existed).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request

from agentia import names
from agentia.contracts.runner import RunnerClient
from agentia.dapr import DaprClient, ETagMismatch
from agentia.events import AgentCatalog
from agentia.service import event_data
from agentia_gateway.errors import GatewayError, Unavailable
from agentia_gateway.upstream import Upstream

log = logging.getLogger(__name__)
router = APIRouter()
CATALOG_KEY = "gw-agents"
REFRESH_S = 10.0  # how stale another replica's copy may be before this one re-reads it


class Catalog:
    """The agents the mesh can run, with the model each one's definition names."""

    def __init__(self, client: DaprClient) -> None:
        self.client = client
        self._runner = RunnerClient(Upstream(client))
        self._specs: list[dict[str, Any]] = []
        self._at = float("-inf")
        self._when = ""  # occurred_at of the catalog held

    async def specs(self) -> list[dict[str, Any]]:
        if time.monotonic() - self._at > REFRESH_S:
            item = await self.client.get_state(names.STATE_STORE, CATALOG_KEY)
            if item is not None:
                self._hold(dict(item.value))
            elif not self._specs:
                await self._ask_runner()
            self._at = time.monotonic()
        return list(self._specs)

    async def models(self) -> dict[str, str]:
        """Agent name -> the model its definition names."""
        return {s["name"]: str(s.get("model") or "offline") for s in await self.specs()}

    def _hold(self, doc: dict[str, Any]) -> None:
        self._specs, self._when = list(doc.get("agents", [])), str(doc.get("occurred_at", ""))

    async def _ask_runner(self) -> None:
        try:
            specs = await self._runner.agents()
        except GatewayError as exc:
            raise Unavailable(
                "no agent catalog yet: agent-runner has not published one and cannot be asked "
                f"({exc.reason})",
                retry_after_s=5,
            ) from None
        await self.keep({"agents": list(specs), "occurred_at": "", "digest": ""})

    async def keep(self, doc: dict[str, Any]) -> None:
        """Store ``doc`` unless a newer catalog is stored already (compare-and-set)."""
        for _ in range(10):
            item = await self.client.get_state(names.STATE_STORE, CATALOG_KEY)
            current = dict(item.value) if item is not None else None
            if current is not None and str(current.get("occurred_at", "")) > str(
                doc.get("occurred_at", "")
            ):
                self._hold(current)
                return
            try:
                await self.client.save_over(names.STATE_STORE, CATALOG_KEY, doc, item)
            except ETagMismatch:
                continue
            self._hold(doc)
            self._at = time.monotonic()
            return


@router.post("/events/agents-catalog", include_in_schema=False)
async def on_catalog(request: Request) -> dict[str, str]:
    _, event = await event_data(request, AgentCatalog)
    if event is None:  # kept as a dead letter
        return {"status": "SUCCESS"}
    catalog: Catalog = request.app.state.catalog
    await catalog.keep(
        {
            "agents": event.agents,
            "digest": event.digest,
            "occurred_at": event.occurred_at.isoformat(),
            "published_by": event.published_by,
        }
    )
    log.info("agent catalog kept", extra={"digest": event.digest, "agents": len(event.agents)})
    return {"status": "SUCCESS"}
