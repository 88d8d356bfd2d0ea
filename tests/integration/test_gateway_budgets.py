"""Per-key token budgets through the real mesh: usage counted from the runs' model responses,
once per run however often its final event arrives, and a 429 with the reason when the day's
budget is used up."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from agentia import names
from agentia.dapr import cloudevent
from agentia.events import RunEvent
from agentia.runtime import local_keys

from .conftest import Infra, wait_for

pytestmark = pytest.mark.integration
GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
BUDGET = 60  # tokens: the offline model's first answer uses part of it, a few use it up


@pytest.fixture(scope="module")
def tenant(infra: Infra, mesh_service: Callable[[str], None]) -> Iterator[httpx.Client]:
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.GATEWAY):
        mesh_service(app_id)
    name = f"budget-{uuid.uuid4().hex[:6]}"
    key, _ = local_keys.create_key(infra.home, name, "write", token_budget_per_day=BUDGET)
    local_keys.reload_gateway_secrets(infra.home)
    with httpx.Client(base_url=GATEWAY, headers={"x-api-key": key}, timeout=60) as client:
        wait_for(lambda: client.get("/usage").status_code == 200, 90, "the new key")
        yield client
    local_keys.revoke_key(infra.home, name)
    local_keys.reload_gateway_secrets(infra.home)


def test_usage_is_counted_once_and_the_budget_refuses(tenant: httpx.Client, infra: Infra) -> None:
    assert tenant.get("/usage").json()["tokens_used_today"] == 0
    first = tenant.post("/runs/wait", json={"assistant_id": "assistant", "input": "hello"})
    assert first.status_code == 200, first.text
    run_id = first.json()["run"]["run_id"]

    def counted() -> bool:
        return int(tenant.get("/usage").json()["days"][0]["runs"]) == 1

    wait_for(counted, 30, "the run's usage counted")
    today = tenant.get("/usage").json()
    used = today["tokens_used_today"]
    assert used > 0 and today["days"][0]["requests"] >= 1
    assert today["tokens_left_today"] == BUDGET - used

    # The final event delivered again (as at-least-once delivery may): nothing more is counted.
    replay = RunEvent(
        run_id=run_id,
        kind="run.completed",
        status="success",
        seq=99,
        data={"usage": {"input_tokens": 1000, "output_tokens": 1000, "requests": 1}},
    )
    resp = httpx.post(
        f"{GATEWAY}/events/runs-events",
        json=cloudevent(replay, "test"),
        headers={"dapr-api-token": infra.tokens.app_api_token},
    )
    assert resp.status_code == 200, resp.text
    assert tenant.get("/usage").json()["tokens_used_today"] == used

    refused = None
    for _ in range(20):
        resp = tenant.post("/runs/wait", json={"assistant_id": "assistant", "input": "hello"})
        if resp.status_code == 429:
            refused = resp
            break
        assert resp.status_code == 200, resp.text
    assert refused is not None, "the budget never ran out"
    detail = refused.json()["detail"]
    assert f"token budget of {BUDGET} per day used up" in detail and "00:00 UTC" in detail
    assert int(refused.headers["retry-after"]) > 0
    # Refused at the door: no run was recorded, and reading stays allowed.
    assert tenant.post("/threads/search", json={}).status_code == 200
    assert tenant.get("/usage").json()["tokens_left_today"] == 0


def test_keys_without_a_budget_are_not_limited(infra: Infra, tenant: httpx.Client) -> None:
    key = local_keys.read_local_key(infra.home)
    body = httpx.get(f"{GATEWAY}/usage", headers={"x-api-key": key or ""}).json()
    assert body["token_budget_per_day"] is None and body["tokens_left_today"] is None
