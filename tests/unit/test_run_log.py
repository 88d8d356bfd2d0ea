"""A run's log: one key per event, each written once; a final event is never dropped; read
by sequence in windows. Against a fake sidecar holding the keys (the real Redis path is in
the integration and chaos tests)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from agentia import names
from agentia.dapr import DaprClient
from agentia_gateway.run_store import LOG_WINDOW, RunStore


class FakeCache:
    """The cache store and its create-only twin, as the sidecar's state API answers."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        parts = request.url.path.split("/")  # "", v1.0, state, store, [key|bulk]
        store, rest = parts[3], parts[4:]
        if request.method == "GET":
            if rest[0] not in self.keys:
                return httpx.Response(204)
            return httpx.Response(200, json=self.keys[rest[0]], headers={"etag": "1"})
        if request.method == "DELETE":
            self.keys.pop(rest[0], None)
            return httpx.Response(204)
        body = json.loads(request.content)
        if rest == ["bulk"]:
            return httpx.Response(
                200,
                json=[{"key": k, "data": self.keys[k]} for k in body["keys"] if k in self.keys],
            )
        for item in body:
            if store == names.CACHE_STORE_CREATE and item["key"] in self.keys:
                return httpx.Response(500, json={"message": "failed to set key"})
            self.keys[item["key"]] = item["value"]
        return httpx.Response(204)


def _store(cache: FakeCache) -> RunStore:
    client = DaprClient("http://sidecar", None, "gateway", transport=httpx.MockTransport(cache))
    return RunStore(client, log_ttl_s=3600)


def _event(seq: int, kind: str = "message.delta") -> dict[str, Any]:
    return {"seq": seq, "kind": kind, "status": "running", "data": {}}


def test_each_event_once_one_call_each_and_read_in_order() -> None:
    cache = FakeCache()
    store = _store(cache)

    async def run() -> list[dict[str, Any]]:
        for seq in (0, 2, 1):
            await store.append_log("r1", _event(seq))
        before = cache.calls
        await store.append_log("r1", _event(1))  # a redelivery: already there
        assert cache.calls - before == 2  # the create that finds it taken, and a look
        return await store.read_log("r1")

    assert [e["seq"] for e in asyncio.run(run())] == [0, 1, 2]


def test_a_final_event_goes_after_what_an_earlier_attempt_logged() -> None:
    cache = FakeCache()
    store = _store(cache)

    async def run() -> list[dict[str, Any]]:
        for seq in range(5):  # an earlier attempt got further than the one that finished
            await store.append_log("r1", _event(seq))
        final = _event(3, "run.completed")
        await store.append_log("r1", final, final=True)
        await store.append_log("r1", final, final=True)  # redelivered: still once
        return await store.read_log("r1")

    events = asyncio.run(run())
    assert [(e["seq"], e["kind"]) for e in events][-2:] == [
        (4, "message.delta"),
        (5, "run.completed"),
    ]
    assert sum(1 for e in events if e.get("final")) == 1


def test_reads_go_past_a_window_and_start_after_what_was_seen() -> None:
    cache = FakeCache()
    store = _store(cache)
    n = LOG_WINDOW * 2 + 3

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        for seq in range(n):
            await store.append_log("r1", _event(seq))
        return await store.read_log("r1"), await store.read_log("r1", after=n - 2)

    everything, tail = asyncio.run(run())
    assert [e["seq"] for e in everything] == list(range(n))
    assert [e["seq"] for e in tail] == [n - 1]


def test_deleting_a_run_deletes_its_log() -> None:
    cache = FakeCache()
    store = _store(cache)

    async def run() -> None:
        for seq in range(3):
            await store.append_log("r1", _event(seq))
        await store.delete("r1")

    asyncio.run(run())
    assert cache.keys == {}
