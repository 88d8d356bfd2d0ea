"""The scheduler's contract (``agentia.contracts.scheduler``): the typed client builds each
call and reads each answer, the cron and time-zone checks refuse with the field's name, the
routes serve the contract's models, and an answer read and written back is what was sent."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from agentia import names
from agentia.contracts import InvokeError
from agentia.contracts import scheduler as api
from agentia.contracts.scheduler import (
    DrainReport,
    DrainRequest,
    RunTarget,
    ScheduleDeleted,
    ScheduleError,
    ScheduleQuery,
    SchedulerClient,
    ScheduleRequest,
    ScheduleView,
    parse_cron,
)
from agentia.dapr import DaprClient, answer_reason
from agentia_gateway import crons_api, upstream
from agentia_gateway.errors import Invalid
from agentia_scheduler import routes
from agentia_scheduler.schedules import build
from tests.unit.fake_call import Called, FakeCall

T = TypeVar("T")
NOW = datetime(2026, 3, 28, 23, 58, 30, 250_000, tzinfo=UTC)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def stored(**fields: Any) -> dict[str, Any]:
    """A schedule as the scheduler keeps it (JSON)."""
    req = ScheduleRequest.model_validate({"target": {"agent_id": "assistant"}, **fields})
    return build(req, NOW).model_dump(mode="json")


def answered(**extra: Any) -> dict[str, Any]:
    """A schedule as the scheduler answers it (JSON): next_run as isoformat writes it."""
    return {
        **stored(schedule_id="nightly", cron="0 2 * * *"),
        "next_run": "2026-03-29T02:00:00+00:00",
        "fires": 2,
        "last_run_id": "sched-nightly-20260328T020000Z",
        "skipped": 0,
        "last_skip": None,
        "errors": 1,
        "last_error": {"tick": "2026-03-27T02:00:00+00:00", "run_id": "r1", "reason": "no thread"},
        **extra,
    }


# --- the client ---------------------------------------------------------------------------


def test_create_posts_the_request_and_reads_the_view() -> None:
    call = FakeCall(answered())
    req = ScheduleRequest(
        schedule_id="nightly", cron="0 2 * * *", target=RunTarget(agent_id="assistant")
    )
    view = run(SchedulerClient(call).create(req))
    assert call.calls == [
        Called(names.SCHEDULER, "POST", "internal/schedules", req.model_dump(mode="json"), None)
    ]
    # What the scheduler reads back is the request sent.
    assert ScheduleRequest.model_validate(call.calls[0].body) == req
    assert isinstance(view, ScheduleView) and view.schedule_id == "nightly"
    assert view.next_run == datetime(2026, 3, 29, 2, tzinfo=UTC)
    assert view.last_error is not None and view.last_error.reason == "no thread"
    # Written back as it came: isoformat times stay isoformat, absent fields stay absent.
    assert view.as_json() == answered()
    assert "job" not in view.as_json() and "last_drain" not in view.as_json()


def test_list_get_delete_and_drain_build_their_calls() -> None:
    report = {
        "topic": names.TOPIC_RUNS_BATCH,
        "received": 3,
        "started": 3,
        "dead_lettered": 0,
        "batches": 1,
        "unfinished": 0,
        "stopped": "idle",
        "took_s": 2.5,
    }
    call = FakeCall(
        [answered()],
        answered(job={"name": "nightly", "schedule": "CRON_TZ=UTC 0 0 2 * * *"}),
        {"schedule_id": "nightly", "status": "deleted"},
        report,
    )
    client = SchedulerClient(call, app_id="other-scheduler", timeout=7.0)
    query = ScheduleQuery(agent_id="assistant", thread_id="t 1", limit=10)
    found = run(client.list_schedules(query))
    one = run(client.get("nightly"))
    deleted = run(client.delete("nightly"))
    drained = run(client.drain(DrainRequest(batch_size=5)))
    assert [(c.method, c.path) for c in call.calls] == [
        ("GET", "internal/schedules?agent_id=assistant&thread_id=t+1&limit=10&offset=0"),
        ("GET", "internal/schedules/nightly"),
        ("DELETE", "internal/schedules/nightly"),
        ("POST", "internal/drains"),
    ]
    assert {c.app for c in call.calls} == {"other-scheduler"}
    assert {c.timeout for c in call.calls} == {7.0}
    assert [c.body for c in call.calls[:3]] == [None, None, None]
    assert call.calls[3].body == DrainRequest(batch_size=5).model_dump(mode="json")
    assert [v.as_json() for v in found] == [answered()]
    assert one.job == {"name": "nightly", "schedule": "CRON_TZ=UTC 0 0 2 * * *"}
    assert deleted == ScheduleDeleted(schedule_id="nightly")
    assert drained == DrainReport.model_validate(report) and drained.deferred == 0


def test_paths_quote_ids_and_a_bare_list_has_no_query() -> None:
    assert api.schedule_path("a b/c") == "internal/schedules/a%20b%2Fc"
    assert api.schedules_path() == "internal/schedules"
    call = FakeCall(
        [],
        DrainReport(
            topic=names.TOPIC_RUNS_BATCH,
            received=0,
            started=0,
            dead_lettered=0,
            batches=0,
            unfinished=0,
            stopped="idle",
            took_s=0.1,
        ).model_dump(),
    )
    assert run(SchedulerClient(call).list_schedules()) == []
    run(SchedulerClient(call).drain())
    assert call.calls[0].path == "internal/schedules"
    assert call.calls[1].body == DrainRequest().model_dump(mode="json")


def test_a_refusal_reaches_the_caller_as_its_call_raised_it() -> None:
    refused = InvokeError(names.SCHEDULER, 409, "schedule 'nightly' exists")
    call = FakeCall(refused)
    req = ScheduleRequest(schedule_id="nightly", interval_s=60, target=RunTarget(agent_id="a"))
    with pytest.raises(InvokeError) as caught:
        run(SchedulerClient(call).create(req))
    assert caught.value is refused


# --- cron and request validation ----------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "parsed"),
    [
        ("*/15 * * * *", ([0], "*/15 * * * *")),
        ("  0   9 * *   1-5 ", ([0], "0 9 * * 1-5")),
        ("*/20 * * * * *", ([0, 20, 40], "* * * * *")),
        ("5,10-12 0 * * * *", ([5, 10, 11, 12], "0 * * * *")),
        ("@daily", ([0], "0 0 * * *")),
        ("@HOURLY", ([0], "0 * * * *")),
    ],
)
def test_crons_parse(expr: str, parsed: tuple[list[int], str]) -> None:
    assert parse_cron(expr) == parsed


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("61 * * * *", r"^cron: '61 \* \* \* \*': "),
        ("* * *", r"^cron: '\* \* \*' has 3 fields; use 5"),
        ("x * * * * *", r"^cron: bad seconds field 'x'"),
        ("0-75 * * * * *", r"^cron: seconds out of range in '0-75'"),
        ("@fortnightly", r"^cron: '@fortnightly' has 1 fields"),
    ],
)
def test_bad_crons_say_why(expr: str, reason: str) -> None:
    with pytest.raises(ScheduleError, match=reason):
        parse_cron(expr)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"cron": "61 * * * *"}, "cron: '61 * * * *'"),
        ({"cron": "0 * * * *", "timezone": "Mars/Olympus"}, "timezone: unknown time zone"),
        ({"cron": "0 * * * *", "interval_s": 60}, "give exactly one of cron, interval_s, at"),
        ({}, "(got none)"),
        ({"interval_s": 0.5}, "greater than or equal to 1"),
        ({"cron": "0 * * * *", "schedule_id": "Not_An_Id"}, "should match pattern"),
        ({"cron": "0 * * * *", "name": "x"}, "Extra inputs are not permitted"),
        ({"cron": "0 * * * *", "target": {"agent_id": "a", "extra": 1}}, "extra"),
        ({"cron": "0 * * * *", "target": {"kind": "drain", "topic": "runs.requested"}}, "drained"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(reason)):
        ScheduleRequest.model_validate({"target": {"agent_id": "a", "input": "x"}, **fields})


def test_every_request_field_is_described_and_requests_refuse_unknown_fields() -> None:
    models: list[type[BaseModel]] = [
        api.RunTarget,
        api.WorkflowTarget,
        api.DrainRequest,
        api.DrainTarget,
        api.ScheduleRequest,
        api.Schedule,
        api.ScheduleView,
        api.ScheduleQuery,
        api.ScheduleDeleted,
        api.DrainReport,
        api.FireSkip,
        api.FireError,
    ]
    for model in models:
        assert model.__doc__, model
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"
    for request in (api.RunTarget, api.WorkflowTarget, api.DrainRequest, api.ScheduleRequest):
        assert request.model_config.get("extra") == "forbid", request


# --- the routes serve the contract ----------------------------------------------------------


def test_the_routes_take_and_answer_the_contracts_models() -> None:
    served: dict[tuple[str, str], APIRoute] = {}
    for route in routes.router.routes:
        assert isinstance(route, APIRoute)
        for method in route.methods or ():
            served[(method, route.path)] = route
    expected = {
        ("POST", f"/{api.SCHEDULES}"): (api.ScheduleRequest, api.ScheduleView),
        ("GET", f"/{api.SCHEDULES}"): (None, list[api.ScheduleView]),
        ("GET", f"/{api.SCHEDULES}/{{schedule_id}}"): (None, api.ScheduleView),
        ("DELETE", f"/{api.SCHEDULES}/{{schedule_id}}"): (None, api.ScheduleDeleted),
        ("POST", f"/{api.DRAINS}"): (api.DrainRequest, api.DrainReport),
    }
    # Everything served is the contract's, but the job callback (Dapr's, not an API).
    assert set(served) - set(expected) == {("POST", "/job/{name}")}
    for key, (body, answer) in expected.items():
        route = served[key]
        bodies = [p.field_info.annotation for p in route.dependant.body_params]
        assert bodies == ([body] if body else []), key
        for model in bodies:
            assert model.__module__ == "agentia.contracts.scheduler", key
        assert route.response_model == answer, key
    listing = served[("GET", f"/{api.SCHEDULES}")].dependant.query_params
    assert [p.field_info.annotation for p in listing] == [api.ScheduleQuery]


def _scheduler_app(state: dict[str, Any]) -> FastAPI:
    """The scheduler's routes over a fake sidecar holding ``state``."""

    def sidecar(request: httpx.Request) -> httpx.Response:
        parts = request.url.path.split("/")
        if request.method == "GET" and parts[2] == "state":
            found = state.get(parts[4])
            return httpx.Response(200, json=found) if found is not None else httpx.Response(204)
        if request.method == "POST" and parts[-1] == "bulk":
            keys = json.loads(request.content)["keys"]
            items = [{"key": k, "data": state[k], "etag": "1"} for k in keys if k in state]
            return httpx.Response(200, json=items)
        return httpx.Response(500, json={"message": f"unexpected {request.url}"})

    class Jobs:
        async def get(self, name: str) -> dict[str, Any]:
            return {"name": name, "schedule": "@every 60s", "data": {"not": "shown"}}

    app = FastAPI()
    app.include_router(routes.router)
    app.state.dapr = DaprClient(
        "http://sidecar", None, "scheduler", transport=httpx.MockTransport(sidecar)
    )
    app.state.jobs = Jobs()
    return app


def test_what_the_scheduler_serves_the_client_reads_and_writes_back_unchanged() -> None:
    now = datetime.now(UTC)
    cron = stored(schedule_id="a1", cron="*/5 * * * *")
    drain = stored(
        schedule_id="b2",
        interval_s=60,
        target={"kind": "drain"},
        end_at=(NOW + timedelta(days=3650)).isoformat(),
    )
    last_drain = DrainReport(
        topic=names.TOPIC_RUNS_BATCH,
        received=1,
        started=1,
        dead_lettered=0,
        batches=1,
        unfinished=0,
        stopped="idle",
        took_s=2.0,
    ).model_dump()
    state = {
        "schedule-index": {"ids": ["a1", "b2"]},
        "schedule:a1": cron,
        "schedule:b2": drain,
        "schedule-stats:a1": {
            "fires": 3,
            "last_run_id": "r3",
            "errors": 1,
            "last_error": {"tick": now.isoformat(), "run_id": "r2", "reason": "no thread"},
        },
        "schedule-stats:b2": {"fires": 1, "last_drain": last_drain},
    }
    with TestClient(_scheduler_app(state)) as http:

        async def over_http(
            app_id: str,
            method: str,
            *,
            http_method: str = "POST",
            body: Any = None,
            timeout: float | None = None,
        ) -> Any:
            resp = http.request(http_method, f"/{method}", json=body)
            assert resp.status_code < 400, resp.text
            raw.append(resp.json())
            return resp.json()

        raw: list[Any] = []
        client = SchedulerClient(over_http)
        listed = run(client.list_schedules(ScheduleQuery()))
        one = run(client.get("a1"))
        refused = http.get(f"/{api.SCHEDULES}?limit=0")
    assert [v.as_json() for v in listed] == raw[0]
    assert one.as_json() == raw[1]
    first, second = raw[0]
    assert "last_drain" not in first and "job" not in first
    assert second["last_drain"] == last_drain
    assert first["next_run"].endswith("+00:00")  # isoformat, as before the contract
    assert raw[1]["job"] == {"name": "a1", "schedule": "@every 60s"}
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "limit"]


# --- the callers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"cron": "99 * * * *"},
        {"cron": "0 * * * *", "timezone": "Nowhere/City"},
        {"cron": "0 * * * *", "interval_s": 60},
        {"interval_s": 0.5, "schedule_id": "Bad_Id"},
    ],
)
def test_the_gateway_refuses_what_the_scheduler_would_with_its_reason(
    fields: dict[str, Any],
) -> None:
    body = {"target": {"agent_id": "assistant", "input": "x"}, **fields}
    with TestClient(_scheduler_app({})) as http:
        served = http.post(f"/{api.SCHEDULES}", json=body)
    assert served.status_code == 422
    with pytest.raises(Invalid) as refused:
        upstream.request(ScheduleRequest, **body)
    # Its 422 as the gateway's sidecar hands it on.
    answer = httpx.Response(422, json=served.json())
    assert refused.value.reason == answer_reason(answer)


def test_the_gateway_shows_a_schedule_as_a_cron() -> None:
    view = ScheduleView.model_validate(answered(target={"agent_id": "assistant", "input": "hi"}))
    cron = crons_api.as_cron(view)
    assert cron["cron_id"] == "nightly" and cron["schedule"] == "0 2 * * *"
    assert cron["next_run_date"] == "2026-03-29T02:00:00+00:00"
    assert cron["created_at"] == answered()["created_at"]
    assert cron["payload"] == {"assistant_id": "assistant", "input": "hi"}
    assert cron["last_error"] == answered()["last_error"] and cron["errors"] == 1
