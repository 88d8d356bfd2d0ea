"""Per-key budgets through the real mesh: usage counted from the runs' model responses, per
model, once per run however often its final event arrives; priced into money; and a 429 with
the reason when the day's token or cost budget is used up or a model's request limit is hit."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from agentia import names
from agentia.apikeys import ModelLimit
from agentia.dapr import cloudevent
from agentia.events import RunEvent
from agentia_tools.runtime import local_keys

from .conftest import Infra, Sidecar, wait_for

pytestmark = pytest.mark.integration
GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
BUDGET = 60  # tokens: the offline model's first answer uses part of it, a few use it up
# 100 micro-dollars: the offline model is priced 1 µUSD per input and 2 per output token by
# default, so a few runs use it up.
COST_BUDGET = 100


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


def _skipping_cron(client: httpx.Client, text: str) -> dict[str, Any]:
    """A cron of this key firing every second, seen after two skipped fires, then deleted."""
    made = client.post(
        "/runs/crons", json={"assistant_id": "assistant", "interval_s": 1, "input": text}
    )
    assert made.status_code == 200, made.text
    cron_id = made.json()["cron_id"]
    try:
        wait_for(lambda: _cron_view(client, cron_id).get("skipped", 0) >= 2, 30, "skipped fires")
        return _cron_view(client, cron_id)
    finally:
        client.delete(f"/runs/crons/{cron_id}")


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
    view = _skipping_cron(tenant, "over")
    assert view["runs"] == 0, "no run started over budget"
    assert "token budget of" in view["last_skip"]["reason"], view


@pytest.fixture(scope="module")
def tenants(infra: Infra, mesh_service: Callable[[str], None]) -> Iterator[dict[str, httpx.Client]]:
    """Keys with a cost budget and with model limits (made together: one sidecar restart)."""
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.GATEWAY, names.SCHEDULER):
        mesh_service(app_id)
    kinds: dict[str, dict[str, Any]] = {
        "cost": {"cost_budget_micro_usd_per_day": COST_BUDGET},
        "minute": {"model_limits": {"offline": ModelLimit(per_minute=2)}},
        "day": {"model_limits": {"offline": ModelLimit(per_day=1)}},
        "other": {"model_limits": {"openai:gpt-4o": ModelLimit(per_day=1)}},
        "queue": {"model_limits": {"offline": ModelLimit(per_minute=2)}},
        "workflow": {"token_budget_per_day": 1_000_000},
    }
    made: dict[str, str] = {}
    for kind, fields in kinds.items():
        name = f"{kind}-{uuid.uuid4().hex[:6]}"
        key, _ = local_keys.create_key(infra.home, name, "write", **fields)
        made[kind] = key
        kinds[kind] = {"name": name}
    local_keys.reload_gateway_secrets(infra.home)
    clients = {
        kind: httpx.Client(base_url=GATEWAY, headers={"x-api-key": key}, timeout=60)
        for kind, key in made.items()
    }
    for client in clients.values():
        wait_for(_known(client), 90, "the new keys")
    yield clients
    for kind, client in clients.items():
        client.close()
        local_keys.revoke_key(infra.home, kinds[kind]["name"])
    local_keys.reload_gateway_secrets(infra.home)


def _known(client: httpx.Client) -> Callable[[], bool]:
    return lambda: client.get("/usage").status_code == 200


def _runs_counted(client: httpx.Client, runs: int) -> None:
    wait_for(
        lambda: int(client.get("/usage").json()["days"][0]["runs"]) >= runs,
        30,
        f"{runs} runs counted",
    )


def _metric(name: str, **labels: str) -> float:
    text = httpx.get(f"{GATEWAY}/metrics", timeout=5).text
    inside = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    sample = f"{name}{{{inside}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(f"{sample} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_usage_is_priced_per_model_and_the_cost_budget_refuses(
    tenants: dict[str, httpx.Client],
) -> None:
    client = tenants["cost"]
    body = client.get("/usage").json()
    assert body["cost_budget_per_day_usd"] == "0.000100" and body["cost_used_today_usd"] == (
        "0.000000"
    )
    refused, ran = None, 0
    for _ in range(20):
        resp = client.post("/runs/wait", json={"assistant_id": "assistant", "input": "hello"})
        if resp.status_code == 429:
            refused = resp
            break
        assert resp.status_code == 200, resp.text
        ran += 1
        _runs_counted(client, ran)
    assert refused is not None, "the cost budget never ran out"
    detail = refused.json()["detail"]
    assert "cost budget of 0.000100 USD per day used up" in detail and "00:00 UTC" in detail
    assert int(refused.headers["retry-after"]) > 0
    # The runs' final events named the model: one row, priced, whose cost is its tokens at the
    # offline model's default price (1 µUSD per input token, 2 per output token).
    today = client.get("/usage").json()
    (row,) = today["days"][0]["models"]
    assert row["model"] == "offline" and row["priced"] and row["runs"] == ran
    assert row["cost_micro_usd"] == row["input_tokens"] + 2 * row["output_tokens"]
    assert today["cost_used_today_micro_usd"] == row["cost_micro_usd"] >= COST_BUDGET
    assert today["days"][0]["cost_usd"] == today["cost_used_today_usd"]
    assert today["cost_left_today_usd"] == "0.000000"
    key_id = today["key_id"]
    assert _metric("agentia_cost_micro_usd_total", key_id=key_id, model="offline") == float(
        row["cost_micro_usd"]
    )
    assert _metric("agentia_model_requests_total", key_id=key_id, model="offline") == float(
        row["requests"]
    )
    assert _metric("agentia_budget_refusals_total", kind="cost") >= 1


def test_a_model_limit_per_minute_refuses_until_the_next_minute(
    tenants: dict[str, httpx.Client],
) -> None:
    client = tenants["minute"]
    if time.time() % 60 > 40:  # two runs and their counting must fall in one minute
        time.sleep(61 - time.time() % 60)
    for n in (1, 2):  # each asks the offline model once
        resp = client.post("/runs/wait", json={"assistant_id": "assistant", "input": "hi"})
        assert resp.status_code == 200, resp.text
        _runs_counted(client, n)
    limits = client.get("/usage").json()["model_limits"]
    assert limits["offline"]["requests_this_minute"] == 2, limits
    refused = client.post("/runs", json={"assistant_id": "assistant", "input": "hi"})
    assert refused.status_code == 429, refused.text
    assert "model limit of 2 requests per minute to 'offline'" in refused.json()["detail"]
    assert 0 < int(refused.headers["retry-after"]) <= 60
    # Refused before anything was recorded: the key has exactly its two runs.
    assert int(client.get("/usage").json()["days"][0]["runs"]) == 2


def test_a_model_limit_per_day_refuses_runs_and_cron_fires(
    tenants: dict[str, httpx.Client],
) -> None:
    client = tenants["day"]
    thread = client.post("/threads", json={}).json()["thread_id"]
    resp = client.post(f"/threads/{thread}/runs/wait", json={"input": "hi"})
    assert resp.status_code == 200, resp.text
    _runs_counted(client, 1)
    refused = client.post(f"/threads/{thread}/runs/stream", json={"input": "again"})
    assert refused.status_code == 429, refused.text
    assert "model limit of 1 requests per day to 'offline'" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) > 60
    # A key limited on another model only is not held back by its limit.
    other = tenants["other"].post("/runs/wait", json={"assistant_id": "assistant", "input": "x"})
    assert other.status_code == 200, other.text
    # A cron of this key fires, asks the gateway, and starts nothing while the limit holds.
    view = _skipping_cron(client, "tick")
    assert (
        view["runs"] == 0 and "model limit of 1 requests per day" in view["last_skip"]["reason"]
    ), view


def _drain(ops: Sidecar) -> dict[str, Any]:
    resp = ops.invoke(names.SCHEDULER, "POST", "internal/drains", {"idle_s": 1.0})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _status(client: httpx.Client, run_id: str) -> str:
    return str(client.get(f"/runs/{run_id}").json()["status"])


def test_a_run_over_its_limit_is_queued_on_request_and_starts_when_the_limit_allows(
    tenants: dict[str, httpx.Client], mesh_sidecar: Callable[[str], Sidecar]
) -> None:
    """With ``Prefer: over-budget=queue`` a background run over the key's limit is answered
    202 and waits on runs.batch; a drain parks it while the limit holds and starts it at the
    first drain after the limit allows (here: the next minute). One cancelled while it waits
    ends at once and, drained, is not run."""
    client = tenants["queue"]  # two requests a minute to the offline model
    ops = mesh_sidecar(names.GATEWAY)  # drains and run reads, as `agentia drain` does
    _drain(ops)  # leftovers of earlier runs must not count here
    if time.time() % 60 > 20:  # the runs, the queueing and the first drain in one minute
        time.sleep(61 - time.time() % 60)
    for n in (1, 2):
        ran = client.post("/runs/wait", json={"assistant_id": "assistant", "input": "hi"})
        assert ran.status_code == 200, ran.text
        _runs_counted(client, n)
    body = {"assistant_id": "assistant", "input": "queued"}
    assert client.post("/runs", json=body).status_code == 429  # no preference: refused
    queued = client.post("/runs", json=body, headers={"Prefer": "over-budget=queue"})
    assert queued.status_code == 202, queued.text
    assert queued.headers["preference-applied"] == "over-budget=queue"
    run_id = queued.json()["run_id"]
    assert queued.json()["status"] == "pending"
    # A second one, cancelled while it waits: it ends at once and never runs.
    dropped = client.post("/runs", json=body, headers={"Prefer": "over-budget=queue"})
    assert dropped.status_code == 202, dropped.text
    dropped_id = dropped.json()["run_id"]
    assert client.post(f"/runs/{dropped_id}/cancel").status_code == 200
    assert _status(client, dropped_id) == "interrupted"
    parked = _drain(ops)
    assert parked["deferred"] >= 1 and parked["stopped"] == "idle", parked
    assert _status(client, run_id) == "pending", "started while over the limit"
    time.sleep(61 - time.time() % 60)  # the next minute: the limit allows a request again
    started = _drain(ops)
    assert started["unparked"] >= 1 and started["started"] >= 1, started
    wait_for(lambda: _status(client, run_id) == "success", 60, "the queued run finished")
    _runs_counted(client, 3)  # and counted for its key
    # The cancelled one was drained too, and agent-runner did not run it: no model request.
    wait_for(
        lambda: (
            ops.invoke(names.AGENT_RUNNER, "GET", f"internal/runs/{dropped_id}").status_code == 200
        ),
        30,
        "the cancelled run drained",
    )
    ledger = ops.invoke(names.AGENT_RUNNER, "GET", f"internal/runs/{dropped_id}").json()
    assert ledger["status"] == "interrupted" and not ledger.get("usage"), ledger
    assert _status(client, dropped_id) == "interrupted"
    assert int(client.get("/usage").json()["days"][0]["runs"]) == 3
    assert _metric("agentia_budget_queued_total") >= 1


def _completed(client: httpx.Client, instance: str) -> Callable[[], bool]:
    return lambda: client.get(f"/workflows/{instance}").json().get("status") == "COMPLETED"


def _model_steps(client: httpx.Client, instance: str) -> int:
    steps = client.get(f"/workflows/{instance}/steps").json()["steps"]
    return sum(1 for s in steps if s["kind"] == "model")


def _requests(client: httpx.Client) -> int:
    return int(client.get("/usage").json()["days"][0]["requests"])


def test_a_workflows_model_turns_count_against_the_key_that_started_it(
    tenants: dict[str, httpx.Client],
) -> None:
    client = tenants["workflow"]
    instance = f"wf-{uuid.uuid4().hex[:8]}"
    messages = ['calculator {"expression": "2+2"}', "hello"]
    body = {
        "workflow": "AgentLoop",
        "input": {"agent_id": "assistant", "messages": messages},
        "instance_id": instance,
    }
    assert client.post("/workflows", json=body).status_code == 201
    wait_for(_completed(client, instance), 60, "the workflow completed")
    turns = _model_steps(client, instance)
    assert turns == 3  # a tool call and its answer, then the second message's answer
    wait_for(lambda: _requests(client) >= turns, 30, "the workflow's turns counted")
    time.sleep(1)  # a late duplicate would show here
    today = client.get("/usage").json()
    day = today["days"][0]
    assert day["requests"] == turns and day["runs"] == 0, day  # once each, and no run
    (row,) = day["models"]
    assert row["model"] == "offline" and row["cost_micro_usd"] > 0
    assert today["tokens_used_today"] == row["tokens"] > 0

    # A ChatAgent's messages count for the key too.
    chat = f"chat-{uuid.uuid4().hex[:8]}"
    start = {"workflow": "ChatAgent", "input": {"agent_id": "assistant"}, "instance_id": chat}
    assert client.post("/workflows", json=start).status_code == 201
    said = client.post("/workflows/" + chat + "/events/message", json={"text": "hi", "id": "m1"})
    assert said.status_code == 200, said.text
    wait_for(lambda: _requests(client) > turns, 60, "the chat's turn counted")
    client.post(f"/workflows/{chat}/events/message", json={"end": True})
