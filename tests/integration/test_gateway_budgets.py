"""Per-key token budgets through the real mesh: usage counted from the runs' model responses,
once per run however often its final event arrives, and a 429 with the reason when the day's
budget is used up."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

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
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.GATEWAY, names.SCHEDULER):
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
    # A workflow (a long-lived agent) is refused at the door as well.
    workflow = tenant.post("/workflows", json={"workflow": "AgentLoop", "input": {}})
    assert workflow.status_code == 429 and "token budget" in workflow.json()["detail"]
    # Refused at the door: no run was recorded, and reading stays allowed.
    assert tenant.post("/threads/search", json={}).status_code == 200
    assert tenant.get("/usage").json()["tokens_left_today"] == 0


def test_keys_without_a_budget_are_not_limited(infra: Infra, tenant: httpx.Client) -> None:
    key = local_keys.read_local_key(infra.home)
    body = httpx.get(f"{GATEWAY}/usage", headers={"x-api-key": key or ""}).json()
    assert body["token_budget_per_day"] is None and body["tokens_left_today"] is None


def _cron_view(client: httpx.Client, cron_id: str) -> dict[str, Any]:
    resp = client.get(f"/runs/crons/{cron_id}")
    return dict(resp.json()) if resp.status_code == 200 else {}


def test_scheduled_runs_count_against_their_owner_and_stop_at_the_budget(
    tenant: httpx.Client, infra: Infra
) -> None:
    """Runs a cron starts belong to the key that made it: their usage is counted for it, and
    while its budget is used up a fire starts nothing and says why."""
    name = f"cron-owner-{uuid.uuid4().hex[:6]}"
    key, _ = local_keys.create_key(infra.home, name, "write", token_budget_per_day=100_000)
    local_keys.reload_gateway_secrets(infra.home)
    owner = httpx.Client(base_url=GATEWAY, headers={"x-api-key": key}, timeout=60)
    try:
        wait_for(lambda: owner.get("/usage").status_code == 200, 90, "the new key")
        made = owner.post(
            "/runs/crons", json={"assistant_id": "assistant", "interval_s": 2, "input": "tick"}
        )
        assert made.status_code == 200, made.text
        cron_id = made.json()["cron_id"]
        wait_for(lambda: _cron_view(owner, cron_id).get("runs", 0) >= 1, 30, "a scheduled run")
        wait_for(
            lambda: int(owner.get("/usage").json()["days"][0]["runs"]) >= 1,
            30,
            "the scheduled run's usage counted for its owner",
        )
        assert owner.get("/usage").json()["tokens_used_today"] > 0
        assert owner.delete(f"/runs/crons/{cron_id}").status_code == 200
    finally:
        owner.close()
        local_keys.revoke_key(infra.home, name)
        local_keys.reload_gateway_secrets(infra.home)

    # The tenant's budget is used up (the test above): its cron fires and starts nothing.
    assert tenant.get("/usage").json()["tokens_left_today"] == 0, "runs after the budget test"
    made = tenant.post(
        "/runs/crons", json={"assistant_id": "assistant", "interval_s": 1, "input": "over"}
    )
    assert made.status_code == 200, made.text
    cron_id = made.json()["cron_id"]
    try:
        wait_for(lambda: _cron_view(tenant, cron_id).get("skipped", 0) >= 2, 30, "skipped fires")
        view = _cron_view(tenant, cron_id)
        assert view["runs"] == 0, "no run started over budget"
        assert "token budget of" in view["last_skip"]["reason"], view
    finally:
        tenant.delete(f"/runs/crons/{cron_id}")
