"""The gateway's public API through the real mesh: threads in the memory service, runs on
agent-runner (invoked, or through RabbitMQ), streams read from the run logs in Redis, API keys
from the secret store and rate limits counted in Redis. Clients speak plain HTTP + SSE, as an
Agent Protocol client does."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from agentia import names
from agentia_tools.runtime import local_keys
from tests.sse import sse

from .conftest import Infra, wait_for

pytestmark = pytest.mark.integration
GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
SLOW = 'wait {"seconds": 3}'  # the offline model calls the wait tool: a run of ~3 s


@pytest.fixture(scope="module")
def api(infra: Infra, mesh_service: Callable[[str], None]) -> Iterator[httpx.Client]:
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.GATEWAY):
        mesh_service(app_id)
    key = local_keys.read_local_key(infra.home)
    assert key, "agentia's plan makes a local API key"
    with httpx.Client(base_url=GATEWAY, headers={"x-api-key": key}, timeout=60) as client:
        wait_for(lambda: client.post("/threads/search", json={}).status_code == 200, 60, "keys")
        yield client


def _thread(api: httpx.Client, **meta: Any) -> str:
    resp = api.post("/threads", json={"metadata": meta})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["thread_id"])


def test_no_key_or_a_bad_key_is_refused(api: httpx.Client) -> None:
    bare = httpx.post(f"{GATEWAY}/threads/search", json={})
    assert bare.status_code == 401 and "API key" in bare.json()["detail"]
    assert bare.headers["www-authenticate"].startswith("Bearer")
    bad = httpx.post(f"{GATEWAY}/threads/search", json={}, headers={"x-api-key": "agk_nope"})
    assert bad.status_code == 401


def test_read_keys_read_and_rate_limits_hold(api: httpx.Client, infra: Infra) -> None:
    name = f"reader-{uuid.uuid4().hex[:6]}"
    key, _ = local_keys.create_key(infra.home, name, "read", rate_limit_per_minute=5)
    try:
        reader = {"x-api-key": key}
        assert local_keys.reload_gateway_secrets(infra.home)  # what `agentia keys create` does
        # Gateways re-read the keys every few seconds.
        wait_for(
            lambda: (
                httpx.post(f"{GATEWAY}/threads/search", json={}, headers=reader).status_code != 401
            ),
            30,
            "the new key",
        )
        write = httpx.post(f"{GATEWAY}/threads", json={}, headers=reader)
        assert write.status_code == 403 and "read-only" in write.json()["detail"]
        codes = [
            httpx.post(f"{GATEWAY}/threads/search", json={}, headers=reader).status_code
            for _ in range(6)
        ]
        assert 429 in codes, codes
        limited = httpx.post(f"{GATEWAY}/threads/search", json={}, headers=reader)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    finally:
        local_keys.revoke_key(infra.home, name)


def test_thread_lifecycle(api: httpx.Client) -> None:
    tag = uuid.uuid4().hex
    tid = _thread(api, tag=tag, team="a")
    assert api.post("/threads", json={"thread_id": tid}).status_code == 409
    same = api.post("/threads", json={"thread_id": tid, "if_exists": "do_nothing"})
    assert same.status_code == 200 and same.json()["thread_id"] == tid
    got = api.get(f"/threads/{tid}").json()
    assert got["status"] == "idle" and got["metadata"] == {"tag": tag, "team": "a"}
    found = api.post("/threads/search", json={"metadata": {"tag": tag}}).json()
    assert [t["thread_id"] for t in found] == [tid]
    patched = api.patch(f"/threads/{tid}", json={"metadata": {"team": "b"}}).json()
    assert patched["metadata"] == {"tag": tag, "team": "b"}
    copy = api.post(f"/threads/{tid}/copy").json()
    assert copy["thread_id"] != tid and copy["metadata"]["team"] == "b"
    assert api.get(f"/threads/{tid}/state").json()["values"] == {"messages": []}
    assert api.delete(f"/threads/{tid}").status_code == 204
    assert api.get(f"/threads/{tid}").status_code == 404
    assert api.delete(f"/threads/{copy['thread_id']}").status_code == 204


def test_run_and_wait_on_a_thread(api: httpx.Client) -> None:
    tid = _thread(api)
    body = {"assistant_id": "assistant", "input": {"messages": [{"role": "user", "content": "hi"}]}}
    resp = api.post(f"/threads/{tid}/runs/wait", json=body)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["run"]["status"] == "success"
    assert [m["role"] for m in result["values"]["messages"]] == ["user", "assistant"]
    state = api.get(f"/threads/{tid}/state").json()
    assert len(state["values"]["messages"]) == 2
    history = api.get(f"/threads/{tid}/history").json()
    assert [len(h["values"]["messages"]) for h in history] == [2, 0]
    runs = api.get(f"/threads/{tid}/runs").json()
    assert [r["run_id"] for r in runs] == [result["run"]["run_id"]]


def test_background_run_then_poll_and_join(api: httpx.Client) -> None:
    tid = _thread(api)
    run = api.post(f"/threads/{tid}/runs", json={"input": "what is 6*7"}).json()
    assert run["status"] == "pending"
    wait_for(
        lambda: api.get(f"/threads/{tid}/runs/{run['run_id']}").json()["status"] == "success",
        60,
        "the background run",
    )
    joined = api.get(f"/threads/{tid}/runs/{run['run_id']}/join").json()
    assert joined["run"]["status"] == "success" and joined["values"]["messages"]
    assert api.get(f"/threads/{tid}").json()["status"] == "idle"


def test_stream_then_resume_with_last_event_id(api: httpx.Client) -> None:
    tid = _thread(api)
    body = {
        "input": SLOW,
        "stream_mode": ["values", "messages-tuple", "events"],
        "on_disconnect": "continue",
    }
    first: list[dict[str, Any]] = []
    with api.stream("POST", f"/threads/{tid}/runs/stream", json=body) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(
            "text/event-stream"
        )
        run_id = resp.headers["content-location"].rsplit("/", 1)[-1]
        for event in sse(resp.iter_lines()):
            first.append(event)
            if "id" in event:
                break  # drop the connection after the first run event
    assert first[0]["event"] == "metadata" and first[0]["data"]["run_id"] == run_id
    last_id = first[-1]["id"]
    rest: list[dict[str, Any]] = []
    url = f"/threads/{tid}/runs/{run_id}/stream"
    with api.stream("GET", url, headers={"Last-Event-ID": last_id}) as resp:
        assert resp.status_code == 200
        rest = list(sse(resp.iter_lines()))
    ids = [int(e["id"]) for e in rest if "id" in e]
    assert ids and min(ids) > int(last_id), "only what was missed is sent again"
    kinds = [e["data"]["kind"] for e in rest if e["event"] == "events"]
    assert "tool.call" in kinds and kinds[-1] == "run.completed"
    values = [e for e in rest if e["event"] == "values"]
    assert values[-1]["data"]["messages"][-1]["role"] == "assistant"


def test_busy_thread_reject_enqueue_and_cancel(api: httpx.Client) -> None:
    tid = _thread(api)
    slow = api.post(f"/threads/{tid}/runs", json={"input": SLOW}).json()
    refused = api.post(f"/threads/{tid}/runs", json={"input": "hi"})
    assert refused.status_code == 409 and "busy" in refused.json()["detail"]
    queued = api.post(
        f"/threads/{tid}/runs", json={"input": "hi", "multitask_strategy": "enqueue"}
    ).json()
    assert api.get(f"/threads/{tid}").json()["status"] == "busy"
    cancelled = api.post(f"/threads/{tid}/runs/{slow['run_id']}/cancel?wait=true").json()
    assert cancelled["status"] == "interrupted"
    done = api.get(f"/threads/{tid}/runs/{queued['run_id']}/join").json()
    assert done["run"]["status"] == "success"


def test_stateless_run_and_bad_input(api: httpx.Client) -> None:
    ok = api.post("/runs/wait", json={"agent_id": "assistant", "input": "hello"}).json()
    assert ok["run"]["thread_id"] is None and ok["messages"][-1]["role"] == "assistant"
    cases = [
        ("/runs/wait", {"agent_id": "nosuch", "input": "x"}, 404, "no agent"),
        ("/runs/wait", {"input": ""}, 422, "empty"),
        ("/runs/wait", {"input": {"messages": [{"role": "wizard", "content": "x"}]}}, 422, "role"),
        ("/threads/nosuch-thread/runs", {"input": "x"}, 404, "no thread"),
        ("/threads/search", {"limit": 0}, 422, ""),
        ("/threads/prune", {"thread_ids": ["\u00a1\f"]}, 422, "pattern"),
        ("/runs/cancel", {"run_ids": ["../x"]}, 422, "pattern"),
    ]
    for path, body, code, why in cases:
        resp = api.post(path, json=body)
        assert resp.status_code == code, (path, resp.text)
        assert why in json.dumps(resp.json())
    malformed = api.post("/threads", content=b"{nope", headers={"content-type": "application/json"})
    assert malformed.status_code == 422
    huge = api.post(
        "/threads", content=b"x" * 2_000_000, headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the gateway counts as it reads
        yield b'{"metadata": {"x": "'
        for _ in range(40):
            yield b"y" * 50_000
        yield b'"}}'

    chunked = api.post("/threads", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413, chunked.text
    for text in ("a\\u0000b", "\\ud800"):  # NUL, and a lone surrogate: PostgreSQL stores neither
        bad = api.post(
            "/threads",
            content=f'{{"metadata": {{"k": "{text}"}}}}'.encode(),
            headers={"content-type": "application/json"},
        )
        assert bad.status_code == 422 and "NUL" in bad.json()["detail"], bad.text
    # curl -d sends a form's content type: the API reads the body as the JSON it is.
    form = api.post(
        "/threads",
        content=b'{"metadata": {"via": "curl"}}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 200 and form.json()["metadata"] == {"via": "curl"}, form.text
    created = api.post("/runs", json={"input": "hi", "if_not_exists": "create"}).json()
    assert api.get(f"/runs/{created['run_id']}").status_code == 200
    time.sleep(0)  # stateless background runs are also joinable
    assert api.get(f"/runs/{created['run_id']}/wait").json()["run"]["status"] == "success"


def test_streams_opened_while_runs_start_never_skip_or_reorder(api: httpx.Client) -> None:
    """The race a new stream must win: many streams opened at once, each on a run that starts
    as the stream opens. Every stream begins at its run's first event (seq 0) and shows each
    event once, in order, to the final one; in ``values`` mode the last state holds the input."""
    streams, per_stream = 12, []

    def one(i: int) -> list[dict[str, Any]]:
        body = {"input": f'calculator {{"expression": "{i}*7"}}', "stream_mode": ["events"]}
        with (
            httpx.Client(base_url=GATEWAY, headers=api.headers, timeout=120) as own,
            own.stream("POST", "/runs/stream", json=body) as resp,
        ):
            assert resp.status_code == 200
            return list(sse(resp.iter_lines()))

    with ThreadPoolExecutor(max_workers=streams) as pool:
        per_stream = list(pool.map(one, range(streams)))
    for i, frames in enumerate(per_stream):
        events = [e["data"] for e in frames if e.get("event") == "events"]
        seqs = [int(e["seq"]) for e in events]
        assert seqs == list(range(len(seqs))), (i, seqs)
        ends = [e["kind"] for e in events[:1] + events[-1:]]
        assert ends == ["run.started", "run.completed"], (i, frames)
        assert str(i * 7) in json.dumps(events[-1]["data"])
    tid = _thread(api)
    body = {"input": "hello there", "stream_mode": ["values"]}
    with api.stream("POST", f"/threads/{tid}/runs/stream", json=body) as resp:
        values = [e["data"] for e in sse(resp.iter_lines()) if e.get("event") == "values"]
    assert values and values[0]["messages"][0]["content"] == "hello there", values[:1]
