"""Subscription handler for `runs.events`: keep each run's latest status where any replica sees it.

Status lives in the cache store (Redis through Dapr), so every gateway replica answers the
same. Updates are idempotent and tolerate reordering: an event only moves a run forward.
"""

from __future__ import annotations

import logging
from typing import Any

import pydantic
from fastapi import APIRouter, Request

from agentia import names
from agentia.dapr import ETagMismatch
from agentia.events import RunEvent
from agentia.service import dapr_client, keep_dead_letter

log = logging.getLogger(__name__)
router = APIRouter()


def run_status_key(run_id: str) -> str:
    return f"run-status:{run_id}"


def advance(current: dict[str, Any] | None, event: RunEvent) -> dict[str, Any] | None:
    """The run's new status record, or None when ``event`` is old news (duplicate or late)."""
    if current is not None and int(current.get("seq", -1)) >= event.seq:
        return None
    return {
        "run_id": event.run_id,
        "status": event.status,
        "seq": event.seq,
        "kind": event.kind,
        "updated_at": event.occurred_at.isoformat(),
    }


@router.post("/events/runs-events")
async def on_run_event(request: Request) -> dict[str, str]:
    envelope = await request.json()
    try:
        event = RunEvent.model_validate(envelope.get("data"))
    except pydantic.ValidationError:
        # Not a run event we understand: keep it for inspection instead of retrying forever.
        await keep_dead_letter(request.app, str(envelope.get("topic", "")), envelope)
        return {"status": "SUCCESS"}
    client = dapr_client(request.app)
    key = run_status_key(event.run_id)
    for _ in range(5):
        item = await client.get_state(names.CACHE_STORE, key)
        record = advance(item.value if item else None, event)
        if record is None:
            return {"status": "SUCCESS"}
        try:
            await client.save_state(
                names.CACHE_STORE,
                key,
                record,
                etag=item.etag if item else None,
                first_write=item is None,
            )
            return {"status": "SUCCESS"}
        except ETagMismatch:
            continue  # another replica moved the run; read again
    return {"status": "RETRY"}
