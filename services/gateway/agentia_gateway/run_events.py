"""Subscription handler for `runs.events`: every run event goes into the run's log (which
streams on any replica read), and a run's start and end move its record and its thread's lane.

Idempotent and order-tolerant: an event's seq is its position in the run, so a redelivered
event, or a retried attempt's repeat of an earlier attempt's event, is already in the log,
and a settled run stays settled: at-least-once delivery never shows an event twice.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request

from agentia.events import FINAL, Kind, RunEvent, Status
from agentia.service import event_data
from agentia_gateway.deps import Flow
from agentia_gateway.run_record import RunRecord
from agentia_gateway.run_store import Contended, now
from agentia_gateway.streaming import FINAL_KINDS

log = logging.getLogger(__name__)
router = APIRouter()


def log_entry(event: RunEvent) -> dict[str, Any]:
    """What a run's log keeps of one event."""
    return {"seq": event.seq, "kind": event.kind, "status": event.status, "data": event.data}


def started(current: RunRecord | None) -> RunRecord | None:
    """A pending run becomes running; anything else is left as it is."""
    if current is None or current.status != Status.PENDING:
        return None
    return current.model_copy(update={"status": Status.RUNNING, "updated_at": now()})


@router.post("/events/runs-events", include_in_schema=False)
async def on_run_event(request: Request, flow: Flow) -> dict[str, str]:
    _, event = await event_data(request, RunEvent)
    if event is None:  # kept as a dead letter
        return {"status": "SUCCESS"}
    try:
        # The status first: a start held back by a contended log (RETRY below) would otherwise
        # come back after the run ended, and the run would never show as running.
        if event.kind == Kind.MODEL_USAGE:  # a workflow's model turn: usage only, no run
            await flow.budgets.count_turn(event.run_id, event.data)
            return {"status": "SUCCESS"}
        if event.kind == Kind.RUN_STARTED and event.run_id not in flow.settled:
            await flow.store.update(event.run_id, started)
        final = event.kind in FINAL_KINDS and event.status in FINAL
        if final:
            # Settled before a stream can show the end: a client that starts the thread's
            # next run the moment its stream ends finds the thread free.
            await flow.settle(event.run_id, event.status, event.data)
        await flow.store.append_log(event.run_id, log_entry(event), final=final)
        flow.signals.notify(event.run_id)
    except Contended:
        return {"status": "RETRY"}  # many events of one run at once: Dapr redelivers this one
    return {"status": "SUCCESS"}
