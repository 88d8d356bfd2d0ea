"""Rate limiting costs one counter call a request, and still refuses at the limit exactly,
across replicas sharing one counter (a fake Redis binding behind a fake sidecar)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from agentia.dapr import DaprClient
from agentia_gateway.security import Denied, Principal, RateLimiter


class FakeRedis:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        key, op = body["metadata"]["key"], body["operation"]
        self.calls.append(op)
        if op == "increment":
            self.counts[key] = self.counts.get(key, 0) + 1
            return httpx.Response(204)
        return httpx.Response(200, content=str(self.counts.get(key, 0)).encode())


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_020.0  # the start of a one-minute window

    def __call__(self) -> float:
        return self.now


def _limiters(redis: FakeRedis, n: int, limit: int, clock: Clock) -> list[RateLimiter]:
    transport = httpx.MockTransport(redis)
    return [
        RateLimiter(
            DaprClient("http://sidecar", None, f"gw-{i}", transport=transport), limit, clock
        )
        for i in range(n)
    ]


KEY = Principal(id="k1", name="test", scope="write")


def test_one_replica_refuses_the_first_request_over_the_limit() -> None:
    redis, clock = FakeRedis(), Clock()
    (limiter,) = _limiters(redis, 1, 100, clock)

    async def run(n: int) -> int:
        allowed = 0
        for _ in range(n):
            try:
                await limiter.hit(KEY)
                allowed += 1
            except Denied as denied:
                assert denied.status == 429 and "Retry-After" in denied.headers
        return allowed

    assert asyncio.run(run(49)) == 49
    # Below half the limit a request is one INCR: the count was read once, at the first.
    assert redis.calls.count("increment") == 49 and redis.calls.count("get") == 1
    assert asyncio.run(run(71)) == 51


def test_replicas_sharing_the_counter_refuse_at_the_limit_together() -> None:
    redis, clock = FakeRedis(), Clock()
    limiters = _limiters(redis, 3, 90, clock)

    async def run() -> int:
        allowed = 0
        for i in range(150):  # 150 requests over 3 s, round robin over the replicas
            clock.now += 0.02
            try:
                await limiters[i % 3].hit(KEY)
                allowed += 1
            except Denied:
                pass
        return allowed

    assert asyncio.run(run()) == 90


@pytest.mark.parametrize("status", [500, 503])
def test_a_counter_store_that_is_down_lets_requests_through(status: int) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json={}))
    limiter = RateLimiter(DaprClient("http://sidecar", None, "gw", transport=transport), 1)

    async def run() -> None:
        for _ in range(5):
            await limiter.hit(KEY)

    asyncio.run(run())
