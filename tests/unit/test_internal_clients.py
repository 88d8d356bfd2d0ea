"""agent-runner's and the gateway's typed clients (``agentia.contracts.runner`` and
``…gateway``): each call's method, path and body, and each answer read as its model; the
paths are the ones the serving routes are mounted on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.routing import APIRoute

from agentia import names
from agentia.contracts import InvokeError
from agentia.contracts.gateway import BudgetAdmitted, GatewayClient, ScheduledRun
from agentia.contracts.runner import CancelAnswer, LedgerRecord, RunnerClient
from agentia.events import RunRequested, Status
from tests.unit.fake_call import FakeCall

LEDGER = {"run_id": "r1", "status": "success", "output": "hi", "thread_id": "t1"}


def test_the_runner_client_reads_the_ledger_waits_cancels_and_lists() -> None:
    call = FakeCall(LEDGER, LEDGER, {"run_id": "r1", "status": "cancelling"}, [{"name": "a"}])
    client = RunnerClient(call)
    request = RunRequested(run_id="r1", agent_id="assistant", input="hi")

    async def go() -> tuple[LedgerRecord, LedgerRecord, CancelAnswer, list[dict[str, Any]]]:
        return (
            await client.ledger("r1"),
            await client.wait(request, timeout=5.0),
            await client.cancel("r1"),
            await client.agents(),
        )

    ledger, waited, cancelled, agents = asyncio.run(go())
    assert ledger.final and ledger.status == Status.SUCCESS and waited.output == "hi"
    assert cancelled.status == "cancelling" and agents == [{"name": "a"}]
    assert [c[:3] for c in call.calls] == [
        (names.AGENT_RUNNER, "GET", "internal/runs/r1"),
        (names.AGENT_RUNNER, "POST", "internal/runs/wait"),
        (names.AGENT_RUNNER, "POST", "internal/runs/r1/cancel"),
        (names.AGENT_RUNNER, "GET", "internal/agents"),
    ]
    assert call.calls[1][3]["run_id"] == "r1" and call.calls[1][4] == 5.0


def test_the_runner_client_passes_a_refusal_on() -> None:
    client = RunnerClient(FakeCall(InvokeError(names.AGENT_RUNNER, 404, "no run 'r9'")))
    with pytest.raises(InvokeError) as caught:
        asyncio.run(client.ledger("r9"))
    assert caught.value.status == 404


def test_the_gateway_client_creates_checks_and_admits() -> None:
    run = ScheduledRun(run_id="cron-1", agent_id="assistant", input="hi", owner="k1")
    call = FakeCall({"run_id": "cron-1"}, None, {"key_id": "k 1", "admitted": True})
    client = GatewayClient(call)

    async def go() -> tuple[dict[str, Any], BudgetAdmitted]:
        created = await client.create_run(run)
        await client.check_run(run)
        return created, await client.admit("k 1", "assistant")

    created, admitted = asyncio.run(go())
    assert created == {"run_id": "cron-1"} and admitted.admitted
    assert [c[:3] for c in call.calls] == [
        (names.GATEWAY, "POST", "internal/runs"),
        (names.GATEWAY, "POST", "internal/runs/check"),
        (names.GATEWAY, "GET", "internal/budgets/k%201?agent_id=assistant"),
    ]
    assert call.calls[0][3] == run.model_dump(mode="json")


def _paths(router: Any) -> set[str]:
    return {r.path for r in router.routes if isinstance(r, APIRoute)}


def test_the_clients_paths_are_where_the_routes_are() -> None:
    from agentia_gateway import internal_runs, usage_api
    from agentia_runner import handlers

    runner = _paths(handlers.router)
    assert {"/internal/runs/{run_id}", "/internal/runs/wait", "/internal/agents"} <= runner
    assert "/internal/runs/{run_id}/cancel" in runner
    gateway = _paths(internal_runs.router) | _paths(usage_api.internal)
    assert {"/internal/runs", "/internal/runs/check", "/internal/budgets/{key_id}"} <= gateway
