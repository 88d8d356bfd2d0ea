"""Session memory through the memory service and its sidecar, on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from agentia import names

from .conftest import Sidecar, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def caller(mesh_sidecar: Callable[[str], Sidecar], mesh_service: Callable[[str], None]) -> Sidecar:
    mesh_service(names.MEMORY)
    return mesh_sidecar(names.GATEWAY)


def call(app: Sidecar, verb: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        verb,
        f"{app.dapr}/v1.0/invoke/{names.MEMORY}/method/internal/threads{path}",
        json=body,
        headers=app.headers(),
        timeout=30,
    )


def test_session_round_trip(caller: Sidecar) -> None:
    tid = f"t-{uuid.uuid4().hex[:10]}"
    assert (
        call(caller, "POST", "", {"thread_id": tid, "metadata": {"user": "ann"}}).status_code == 200
    )
    again = call(caller, "POST", "", {"thread_id": tid, "metadata": {"user": "bob"}})
    assert again.json()["metadata"] == {"user": "ann"}  # create is idempotent
    items = [{"role": "user", "content": f"m{i}"} for i in range(5)]
    assert call(caller, "POST", f"/{tid}/items", {"items": items}).json() == {"item_count": 5}
    assert call(caller, "GET", f"/{tid}/items?limit=2").json()["items"] == items[-2:]
    assert call(caller, "POST", f"/{tid}/items/pop", {}).json()["item"] == items[-1]
    assert call(caller, "GET", f"/{tid}/items").json()["items"] == items[:-1]
    assert call(caller, "GET", f"/{tid}").json()["item_count"] == 4
    assert call(caller, "DELETE", f"/{tid}/items").status_code == 204
    assert call(caller, "GET", f"/{tid}/items").json()["items"] == []
    assert call(caller, "POST", f"/{tid}/items/pop", {}).json()["item"] is None


def test_bad_input_gets_a_4xx_with_a_reason(caller: Sidecar) -> None:
    missing = call(caller, "GET", "/no-such-thread")
    assert missing.status_code == 404 and "no thread" in missing.json()["detail"]
    bad_id = call(caller, "POST", "", {"thread_id": "has spaces"})
    assert bad_id.status_code == 422
    wrong_type = call(caller, "POST", "/t-x/items", {"items": "not a list"})
    assert wrong_type.status_code == 422
    too_many = call(caller, "POST", "/t-x/items", {"items": [{}] * 501})
    assert too_many.status_code == 422
    bad_limit = call(caller, "GET", "/t-x/items?limit=0")
    assert bad_limit.status_code == 422


def test_two_concurrent_writers_on_one_thread_lose_nothing(caller: Sidecar) -> None:
    tid = f"t-{uuid.uuid4().hex[:10]}"

    def writer(w: int) -> None:
        for i in range(20):
            resp = call(caller, "POST", f"/{tid}/items", {"items": [{"w": w, "i": i}]})
            assert resp.status_code == 200, resp.text

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(writer, (1, 2)))
    items = call(caller, "GET", f"/{tid}/items").json()["items"]
    assert len(items) == 40
    assert sorted((it["w"], it["i"]) for it in items) == sorted(
        (w, i) for w in (1, 2) for i in range(20)
    )
    for w in (1, 2):  # each writer's items keep their order
        mine = [it["i"] for it in items if it["w"] == w]
        assert mine == sorted(mine)


def test_runs_on_a_thread_keep_the_conversation(
    caller: Sidecar, mesh_service: Callable[[str], None]
) -> None:
    mesh_service(names.AGENT_RUNNER)
    tid = f"t-{uuid.uuid4().hex[:10]}"
    for n, text in enumerate(("first question", "second question")):
        resp = httpx.post(
            f"{caller.dapr}/v1.0/invoke/{names.AGENT_RUNNER}/method/internal/runs/wait",
            json={
                "run_id": f"r-{tid}-{n}",
                "agent_id": "assistant",
                "thread_id": tid,
                "input": text,
            },
            headers=caller.headers(),
            timeout=60,
        )
        assert resp.status_code == 200 and resp.json()["status"] == "success", resp.text
    wait_for(lambda: len(call(caller, "GET", f"/{tid}/items").json()["items"]) == 4, 10, "items")
    items = call(caller, "GET", f"/{tid}/items").json()["items"]
    assert [i["role"] for i in items] == ["user", "assistant", "user", "assistant"]
    assert items[2]["content"] == "second question"
