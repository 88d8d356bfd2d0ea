"""Crons on the public API and `agentia schedules`, through the real mesh (gateway ->
scheduler -> Dapr's Jobs API -> runs.requested -> agent-runner)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import httpx
import pytest

from agentia import names
from agentia_tools.runtime import local_keys

from .conftest import Infra, wait_for

pytestmark = pytest.mark.integration
GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"


@pytest.fixture(scope="module")
def api(infra: Infra, mesh_service: Callable[[str], None]) -> Iterator[httpx.Client]:
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.SCHEDULER, names.GATEWAY):
        mesh_service(app_id)
    key = local_keys.read_local_key(infra.home)
    with httpx.Client(base_url=GATEWAY, headers={"x-api-key": key or ""}, timeout=60) as client:
        wait_for(lambda: client.post("/runs/crons/search", json={}).status_code == 200, 60, "gw")
        yield client


def test_a_cron_runs_the_agent_and_is_listed_and_deleted(api: httpx.Client) -> None:
    body = {"assistant_id": "assistant", "schedule": "*/2 * * * * *", "input": "tick"}
    created = api.post("/runs/crons", json=body)
    assert created.status_code == 200, created.text
    cron = created.json()
    assert cron["assistant_id"] == "assistant" and cron["next_run_date"]
    cron_id = cron["cron_id"]
    wait_for(lambda: api.get(f"/runs/crons/{cron_id}").json()["runs"] >= 1, 30, "a run")
    run_id = api.get(f"/runs/crons/{cron_id}").json()["last_run_id"]
    found = api.post("/runs/crons/search", json={"assistant_id": "assistant", "limit": 1000})
    assert cron_id in [c["cron_id"] for c in found.json()]
    assert api.delete(f"/runs/crons/{cron_id}").status_code == 200
    assert api.get(f"/runs/crons/{cron_id}").status_code == 404
    assert run_id.startswith(f"sched-{cron_id}-")
    # A cron's run is the gateway's run: readable through the public API.
    wait_for(lambda: api.get(f"/runs/{run_id}").json().get("status") == "success", 60, "its run")


def test_bad_crons_are_refused_naming_the_field(api: httpx.Client) -> None:
    bad = api.post("/runs/crons", json={"assistant_id": "assistant", "schedule": "99 * * * *"})
    assert bad.status_code == 422 and "cron" in bad.text, bad.text
    zone = api.post(
        "/runs/crons", json={"schedule": "0 * * * *", "timezone": "Nowhere/City", "input": "x"}
    )
    assert zone.status_code == 422 and "timezone" in zone.text, zone.text
    assert api.post("/runs/crons", json={"schedulee": "0 * * * *"}).status_code == 422


def test_crons_that_could_never_run_are_refused_when_made(api: httpx.Client) -> None:
    every = {"schedule": "0 * * * *"}
    cases = [
        ("/runs/crons", {**every, "assistant_id": "nobody", "input": "x"}, "no agent 'nobody'"),
        ("/runs/crons", {**every, "assistant_id": "assistant"}, "target"),  # no input
        ("/threads/no-such-thread-x1/runs/crons", {**every, "input": "x"}, "no thread"),
    ]
    for path, body, why in cases:
        resp = api.post(path, json=body)
        assert resp.status_code == 422 and why in resp.text, (path, resp.text)


def test_a_fire_that_is_refused_shows_as_the_crons_last_error(api: httpx.Client) -> None:
    thread = api.post("/threads", json={}).json()["thread_id"]
    body = {"schedule": "*/2 * * * * *", "input": "tick"}
    cron = api.post(f"/threads/{thread}/runs/crons", json=body).json()
    try:
        assert api.delete(f"/threads/{thread}").status_code == 204  # gone after the check
        wait_for(
            lambda: api.get(f"/runs/crons/{cron['cron_id']}").json()["last_error"] is not None,
            30,
            "a refused fire",
        )
        error = api.get(f"/runs/crons/{cron['cron_id']}").json()["last_error"]
        assert "no thread" in error["reason"], error
    finally:
        api.delete(f"/runs/crons/{cron['cron_id']}")


def test_cli_creates_lists_and_deletes(api: httpx.Client, infra: Infra) -> None:
    env = {**os.environ, "AGENTIA_HOME": str(infra.home)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agentia_tools", "schedules", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    made = cli("create", "assistant", "hello", "--every", "3600")
    assert made.returncode == 0, made.stderr
    cron_id = made.stdout.strip()
    listed = cli("list")
    assert listed.returncode == 0 and cron_id in listed.stdout, listed.stdout
    both = cli("create", "assistant", "x", "--every", "60", "--cron", "0 * * * *")
    assert both.returncode == 2 and "exactly one" in both.stderr
    bad = cli("create", "assistant", "x", "--cron", "not a cron")
    assert bad.returncode == 1 and "cron" in bad.stderr and "Traceback" not in bad.stderr
    assert cli("delete", cron_id).returncode == 0
