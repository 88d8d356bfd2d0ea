"""LangGraph's own Python clients, unchanged, against the gateway of the real mesh: every
method ``langgraph-sdk`` offers for assistants, threads, runs, crons and the store, and
``RemoteGraph`` from ``langgraph``. What the gateway does not support is refused with a
4xx whose reason names it; what the clients send by default is accepted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.client import LangGraphClient

from agentia import names
from agentia_tools.runtime import local_keys

from .conftest import Infra, wait_for

pytestmark = pytest.mark.integration
GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
CALC = 'calculator {"expression": "6*7"}'
HI = {"messages": [{"role": "user", "content": "hi"}]}
MODES = ["values", "messages", "messages-tuple", "updates", "events", "debug", "custom"]


@pytest.fixture(scope="module")
def key(infra: Infra, mesh_service: Callable[[str], None]) -> Iterator[str]:
    for app_id in (names.MEMORY, names.AGENT_RUNNER, names.SCHEDULER, names.GATEWAY):
        mesh_service(app_id)
    found = local_keys.read_local_key(infra.home)
    assert found, "agentia's plan makes a local API key"
    wait_for(
        lambda: (
            httpx.post(
                f"{GATEWAY}/threads/search", json={}, headers={"x-api-key": found}
            ).status_code
            == 200
        ),
        60,
        "the gateway",
    )
    yield found


def client(key: str) -> LangGraphClient:
    return get_client(url=GATEWAY, api_key=key)


def refused(exc: BaseException, *words: str) -> None:
    """A 4xx whose reason names what is not supported."""
    assert isinstance(exc, httpx.HTTPStatusError), exc
    assert 400 <= exc.response.status_code < 500, exc.response.text
    for word in words:
        assert word in exc.response.text, exc.response.text


def test_assistants(key: str) -> None:
    async def go() -> None:
        c = client(key)
        found = await c.assistants.search(limit=100)
        assert "assistant" in [a["assistant_id"] for a in found]
        assert (await c.assistants.search(graph_id="assistant"))[0]["graph_id"] == "assistant"
        assert await c.assistants.count() == len(found)
        one = await c.assistants.get("assistant")
        assert one["name"] == "assistant"
        schemas = await c.assistants.get_schemas("assistant")
        assert schemas["input_schema"] and schemas["output_schema"]
        graph = await c.assistants.get_graph("assistant")
        assert {"source": "__start__", "target": "assistant"} in graph["edges"]
        assert await c.assistants.get_subgraphs("assistant") == {}
        assert (await c.assistants.get_versions("assistant"))[0]["assistant_id"] == "assistant"
        for call in (
            c.assistants.create(graph_id="assistant"),
            c.assistants.update("assistant", metadata={"a": 1}),
            c.assistants.delete("assistant"),
            c.assistants.set_latest("assistant", 1),
        ):
            with pytest.raises(httpx.HTTPStatusError) as exc:
                await call
            refused(exc.value, "agents are defined by YAML files")
        with pytest.raises(httpx.HTTPStatusError) as exc:
            await c.assistants.get("nobody")
        assert exc.value.response.status_code == 404

    asyncio.run(go())


def test_threads(key: str) -> None:
    async def go() -> None:
        c = client(key)
        tag = uuid.uuid4().hex[:8]
        seeded = await c.threads.create(
            metadata={"t": tag},
            supersteps=[{"updates": [{"values": HI, "as_node": "__start__"}]}],
        )
        tid = seeded["thread_id"]
        assert [m["content"] for m in (await c.threads.get(tid))["values"]["messages"]] == ["hi"]
        same = await c.threads.create(thread_id=tid, if_exists="do_nothing")
        assert same["thread_id"] == tid
        assert (await c.threads.update(tid, metadata={"u": 1}))["metadata"]["u"] == 1
        assert [t["thread_id"] for t in await c.threads.search(metadata={"t": tag})] == [tid]
        assert await c.threads.count(metadata={"t": tag}) == 1
        await c.threads.update_state(tid, {"messages": [{"role": "user", "content": "again"}]})
        state = await c.threads.get_state(tid)
        assert [m["content"] for m in state["values"]["messages"]] == ["hi", "again"]
        await c.runs.wait(tid, "assistant", input=HI)
        history = await c.threads.get_history(tid, limit=10)
        assert len(history) >= 2 and len(history[0]["values"]["messages"]) == 4
        older = await c.threads.get_history(tid, before=history[0]["checkpoint"])
        assert len(older[0]["values"]["messages"]) < 4
        copy = await c.threads.copy(tid)
        assert len((await c.threads.get_state(copy["thread_id"]))["values"]["messages"]) == 4
        with pytest.raises(httpx.HTTPStatusError) as exc:
            async for _ in await c.threads.join_stream(tid):  # type: ignore[misc]
                pass
        refused(exc.value, "thread streams are not supported")
        with pytest.raises(httpx.HTTPStatusError) as exc:
            await c.threads.create(ttl=60)
        refused(exc.value, "ttl")
        await c.threads.delete(copy["thread_id"])
        assert (await c.threads.prune([tid, "no-such-thread"]))["pruned_count"] == 1
        with pytest.raises(httpx.HTTPStatusError) as exc:
            await c.threads.get(tid)
        assert exc.value.response.status_code == 404

    asyncio.run(go())


def test_runs_in_every_stream_mode_and_every_method(key: str) -> None:
    async def go() -> None:
        c = client(key)
        tid = (await c.threads.create())["thread_id"]
        for mode in MODES:
            parts = [p async for p in c.runs.stream(tid, "assistant", input=CALC, stream_mode=mode)]
            events = [p.event for p in parts]
            assert events[0] == "metadata" and len(events) > 1, (mode, events)
            wanted = "messages" if mode.startswith("messages") else mode
            assert wanted in events[1] or mode in events[1], (mode, events)
        values = [
            p.data
            async for p in c.runs.stream(tid, "assistant", input="hello", stream_mode="values")
        ]
        assert values[-1]["messages"][-2]["content"] == "hello"  # the new input is in values
        stateless = [p.event async for p in c.runs.stream(None, "assistant", input="hello")]
        assert stateless[0] == "metadata"
        assert (await c.runs.wait(None, "assistant", input="hi"))["messages"][-1]["role"]
        run = await c.runs.create(tid, "assistant", input=CALC, metadata={"m": 1})
        done = await c.runs.join(tid, run["run_id"])
        assert "42" in str(done)
        assert (await c.runs.get(tid, run["run_id"]))["status"] == "success"
        assert run["run_id"] in [r["run_id"] for r in await c.runs.list(tid, limit=50)]
        slow = await c.runs.create(tid, "assistant", input='wait {"seconds": 2}')
        joined = [p.event async for p in c.runs.join_stream(tid, slow["run_id"])]
        assert "values" in joined
        slower = await c.runs.create(tid, "assistant", input='wait {"seconds": 5}')
        cancelled = await c.runs.cancel(tid, slower["run_id"], wait=True)
        assert cancelled["status"] == "interrupted"
        await c.runs.delete(tid, slower["run_id"])
        busy = await c.runs.create(tid, "assistant", input='wait {"seconds": 5}')
        await c.runs.cancel_many(thread_id=tid, run_ids=[busy["run_id"]])
        assert (await c.runs.join(tid, busy["run_id"]))["run"]["status"] == "interrupted"
        batch = await c.runs.create_batch(
            [
                {"assistant_id": "assistant", "input": "one"},
                {"assistant_id": "assistant", "input": "two"},
            ]
        )
        assert len(batch) == 2 and all(r["thread_id"] is None for r in batch)
        for bad, why in (
            ({"command": {"resume": "yes"}}, "command"),
            ({"interrupt_before": ["agent"]}, "interrupt_before"),
            ({"webhook": "http://127.0.0.1:9/hook"}, "webhook"),
        ):
            with pytest.raises(httpx.HTTPStatusError) as exc:
                await c.runs.create(tid, "assistant", input="x", **bad)  # type: ignore[arg-type]
            refused(exc.value, why)

    asyncio.run(go())


def test_crons(key: str) -> None:
    async def go() -> None:
        c = client(key)
        tid = (await c.threads.create())["thread_id"]
        cron = await c.crons.create("assistant", schedule="0 9 * * *", input="brief")
        on_thread = await c.crons.create_for_thread(
            tid, "assistant", schedule="0 10 * * *", input="x"
        )
        try:
            found = [
                x["cron_id"] for x in await c.crons.search(assistant_id="assistant", limit=1000)
            ]
            assert cron["cron_id"] in found and on_thread["cron_id"] in found
            assert await c.crons.count(thread_id=tid) == 1
            changed = await c.crons.update(cron["cron_id"], schedule="0 11 * * *")
            assert changed["schedule"] == "0 11 * * *" and changed["cron_id"] == cron["cron_id"]
            with pytest.raises(httpx.HTTPStatusError) as exc:
                await c.crons.create("nobody", schedule="0 9 * * *", input="x")
            refused(exc.value, "no agent 'nobody'")
        finally:
            await c.crons.delete(cron["cron_id"])
            await c.crons.delete(on_thread["cron_id"])

    asyncio.run(go())


def test_store(key: str) -> None:
    async def go() -> None:
        c = client(key)
        ns = ["sdk", uuid.uuid4().hex[:8]]
        await c.store.put_item(ns, "k1", {"v": 1})
        assert (await c.store.get_item(ns, "k1"))["value"] == {"v": 1}
        found = await c.store.search_items(ns[:1], limit=100)
        assert [i["key"] for i in found["items"] if i["namespace"] == ns] == ["k1"]
        assert ns in (await c.store.list_namespaces(prefix=ns[:1], limit=1000))["namespaces"]
        await c.store.delete_item(ns, "k1")
        with pytest.raises(httpx.HTTPStatusError) as exc:
            await c.store.get_item(ns, "k1")
        assert exc.value.response.status_code == 404

    asyncio.run(go())


def test_the_sync_client_too(key: str) -> None:
    c = get_sync_client(url=GATEWAY, api_key=key)
    tid = c.threads.create()["thread_id"]
    answer: dict[str, Any] = c.runs.wait(tid, "assistant", input=CALC)  # type: ignore[assignment]
    assert "42" in str(answer["messages"][-1]["content"])
    events = [p.event for p in c.runs.stream(tid, "assistant", input="hi", stream_mode="events")]
    assert events[0] == "metadata" and "events" in events


def test_remote_graph(key: str) -> None:
    graph = RemoteGraph("assistant", url=GATEWAY, api_key=key)
    out = graph.invoke({"messages": [{"role": "user", "content": CALC}]})
    assert "42" in str(out["messages"][-1]["content"])
    chunks = list(
        graph.stream({"messages": [{"role": "user", "content": "hi"}]}, stream_mode="values")
    )
    assert chunks and chunks[-1]["messages"][-1]["role"] == "assistant"
