"""A stream that opens as its run ends: the run is settled just before its final event reaches
the log, so a settled run with an empty log is waited for (a grace), not taken as expired."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from agentia.events import Kind, Status
from agentia_gateway import runs_api
from agentia_gateway.log_signals import LogSignals
from agentia_gateway.run_record import RunRecord
from agentia_gateway.runs_api import Streamed, run_frames

EVENTS = [
    {"seq": 0, "kind": Kind.RUN_STARTED, "status": Status.RUNNING, "data": {}},
    {"seq": 1, "kind": Kind.RUN_COMPLETED, "status": Status.SUCCESS, "data": {"output": "7"}},
]


class Store:
    """A run already settled whose log stays empty for the first ``empty_reads`` reads."""

    def __init__(self, empty_reads: int | None) -> None:
        self.empty_reads, self.reads = empty_reads, 0
        self.record = RunRecord.model_validate(
            {
                "run_id": "r1",
                "agent_id": "a",
                "status": "success",
                "created_at": "t",
                "updated_at": "t",
            }
        )

    async def read_log(self, run_id: str, after: int) -> list[dict[str, Any]]:
        self.reads += 1
        if self.empty_reads is None or self.reads <= self.empty_reads:
            return []
        return [e for e in EVENTS if e["seq"] > after]

    async def get(self, run_id: str) -> RunRecord:
        return self.record


def frames(store: Store) -> list[str]:
    flow = SimpleNamespace(
        store=store, signals=LogSignals(), settings=SimpleNamespace(stream_poll_s=0.01)
    )
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(runs=flow)))
    run = Streamed(run_id="r1", modes=["events"])

    async def collect() -> list[str]:
        return [f async for f in run_frames(request, run, -1, True)]  # type: ignore[arg-type]

    return asyncio.run(asyncio.wait_for(collect(), 10))


def kinds(out: list[str]) -> list[str]:
    datas = [line[6:] for f in out for line in f.splitlines() if line.startswith("data: ")]
    return [json.loads(d).get("kind", "metadata") for d in datas]


def test_a_settled_run_whose_log_is_still_coming_streams_every_event() -> None:
    assert kinds(frames(Store(empty_reads=5))) == ["metadata", Kind.RUN_STARTED, Kind.RUN_COMPLETED]


def test_a_settled_run_whose_log_expired_ends_after_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runs_api, "GAP_GRACE_S", 0.2)
    store = Store(empty_reads=None)
    assert kinds(frames(store)) == ["metadata"]
    assert store.reads > 1  # it waited, reading again, before it gave up
