"""Every call an app makes to its sidecar is counted by kind and target (bench/hops.py)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from agentia.dapr import SIDECAR_CALLS, DaprClient, call_kind


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/v1.0/state/statestore/run:1", ("state.get", "statestore")),
        ("POST", "/v1.0/state/statestore", ("state.save", "statestore")),
        ("POST", "/v1.0/state/cache/bulk", ("state.bulk", "cache")),
        ("POST", "/v1.0/state/statestore/transaction", ("state.transact", "statestore")),
        ("DELETE", "/v1.0/state/cache/run-cancel:1", ("state.delete", "cache")),
        ("POST", "/v1.0/publish/pubsub/runs.events", ("publish", "runs.events")),
        ("POST", "/v1.0/invoke/agent-runner/method/internal/runs/wait", ("invoke", "agent-runner")),
        ("POST", "/v1.0/bindings/ratelimit", ("binding", "ratelimit")),
        ("GET", "/v1.0/secrets/secretstore/bulk", ("secret", "secretstore")),
        ("GET", "/v1.0-beta1/workflows/dapr/wf-1", ("workflow", "dapr")),
        ("GET", "/v1.0/healthz", ("healthz", "")),
        ("GET", "/", ("other", "")),
    ],
)
def test_call_kind(method: str, path: str, expected: tuple[str, str]) -> None:
    assert call_kind(method, path) == expected


def test_client_counts_each_call() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204)

    def seen(call: str, target: str) -> float:
        return SIDECAR_CALLS.labels("counted-app", call, target)._value.get()

    async def calls() -> None:
        transport = httpx.MockTransport(answer)
        async with DaprClient("http://sidecar", None, "counted-app", transport=transport) as c:
            await c.get_state("statestore", "k")
            await c.get_state("statestore", "k")
            await c.delete_state("cache", "k")

    before = seen("state.get", "statestore"), seen("state.delete", "cache")
    asyncio.run(calls())
    assert seen("state.get", "statestore") - before[0] == 2
    assert seen("state.delete", "cache") - before[1] == 1
