"""memory's internal contract (``agentia.contracts.memory``): the typed client builds the
calls memory's routes serve, the routes take their bodies from the contract, and the answers
keep the JSON they had. Pure logic: memory's routers run in-process over fake stores, reached
through a ``DaprClient`` whose transport stands in for the sidecar (``memory_fakes``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pydantic
import pytest
from fastapi.routing import APIRoute

from agentia import names
from agentia.contracts import InvokeError
from agentia.contracts import memory as memory_api
from agentia.dapr import DaprClient
from tests.unit.fake_call import FakeCall
from tests.unit.memory_fakes import ROUTERS, STAMP, memory_app, through_sidecar

# -- what the client sends ----------------------------------------------------------------


THREAD = {
    "thread_id": "t1",
    "metadata": {"user": "ann"},
    "version": 3,
    "item_count": 2,
    "created_at": STAMP,
    "updated_at": STAMP,
}
ITEM = {"namespace": ["a", "b"], "key": "k", "value": {"n": 1}, "created_at": STAMP}
ITEM |= {"updated_at": STAMP}
SCORED = {**ITEM, "score": 0.5}
Ask = Callable[[memory_api.MemoryClient], Coroutine[Any, Any, Any]]

CASES: list[tuple[str, Ask, str, str, Any, Any, type[pydantic.BaseModel] | None]] = [
    (
        "create_thread",
        lambda m: m.create_thread(memory_api.ThreadCreate(thread_id="t1")),
        "POST",
        "internal/threads",
        {"thread_id": "t1", "metadata": {}},
        {**THREAD, "created": True},
        memory_api.ThreadCreated,
    ),
    (
        "search_threads",
        lambda m: m.search_threads(memory_api.ThreadSearch(metadata={"a": 1}, limit=5)),
        "POST",
        "internal/threads/search",
        {"metadata": {"a": 1}, "ids": None, "limit": 5, "offset": 0},
        {"threads": [THREAD]},
        memory_api.ThreadList,
    ),
    ("thread", lambda m: m.thread("t1"), "GET", "internal/threads/t1", None, THREAD, None),
    (
        "patch_thread",
        lambda m: m.patch_thread("t1", memory_api.ThreadPatch(metadata={"b": 2})),
        "PATCH",
        "internal/threads/t1",
        {"metadata": {"b": 2}},
        THREAD,
        memory_api.Thread,
    ),
    (
        "copy_thread",
        lambda m: m.copy_thread("t1"),
        "POST",
        "internal/threads/t1/copy",
        {"thread_id": None},
        THREAD,
        memory_api.Thread,
    ),
    (
        "delete_thread",
        lambda m: m.delete_thread("t1"),
        "DELETE",
        "internal/threads/t1",
        None,
        None,
        None,
    ),
    (
        "items",
        lambda m: m.items("t:1", memory_api.ItemsQuery(limit=2, run_id="r:1", attempt=2)),
        "GET",
        "internal/threads/t:1/items?limit=2&run_id=r:1&attempt=2",
        None,
        {"items": [{"role": "user"}]},
        memory_api.ThreadItems,
    ),
    (
        "add_items",
        lambda m: m.add_items(
            "t1",
            memory_api.ItemsAdd(
                items=[{"role": "user"}],
                run=memory_api.RunKey(run_id="r1", attempt=1, position=4),
            ),
        ),
        "POST",
        "internal/threads/t1/items",
        {"items": [{"role": "user"}], "run": {"run_id": "r1", "attempt": 1, "position": 4}},
        {"item_count": 5},
        memory_api.ItemCount,
    ),
    (
        "settle_run",
        lambda m: m.settle_run("t1", "r1", memory_api.RunSettle(attempt=2, count=3)),
        "POST",
        "internal/threads/t1/runs/r1/settle",
        {"attempt": 2, "count": 3},
        {"item_count": 3},
        memory_api.ItemCount,
    ),
    (
        "truncate",
        lambda m: m.truncate("t1", memory_api.Truncate(count=1)),
        "POST",
        "internal/threads/t1/items/truncate",
        {"count": 1},
        {"item_count": 1},
        memory_api.ItemCount,
    ),
    (
        "pop_item",
        lambda m: m.pop_item("t1"),
        "POST",
        "internal/threads/t1/items/pop",
        {},
        {"item": None},
        memory_api.PoppedItem,
    ),
    (
        "clear_items",
        lambda m: m.clear_items("t1"),
        "DELETE",
        "internal/threads/t1/items",
        None,
        None,
        None,
    ),
    (
        "put_item",
        lambda m: m.put_item(memory_api.PutItem(namespace=["a"], key="k", value={}, index=False)),
        "POST",
        "internal/store/items/put",
        {"namespace": ["a"], "key": "k", "value": {}, "ttl": None, "index": False},
        None,
        None,
    ),
    (
        "get_item",
        lambda m: m.get_item(memory_api.GetItem(namespace=["a", "b"], key="k")),
        "POST",
        "internal/store/items/get",
        {"namespace": ["a", "b"], "key": "k", "refresh_ttl": True},
        ITEM,
        memory_api.StoreItem,
    ),
    (
        "delete_item",
        lambda m: m.delete_item(memory_api.ItemRef(namespace=["a"], key="k")),
        "POST",
        "internal/store/items/delete",
        {"namespace": ["a"], "key": "k"},
        None,
        None,
    ),
    (
        "search_items",
        lambda m: m.search_items(memory_api.SearchItems(namespace_prefix=["a"], query="q")),
        "POST",
        "internal/store/items/search",
        {
            "namespace_prefix": ["a"],
            "filter": None,
            "limit": 10,
            "offset": 0,
            "query": "q",
            "refresh_ttl": True,
        },
        {"items": [SCORED]},
        memory_api.ScoredItems,
    ),
    (
        "list_namespaces",
        lambda m: m.list_namespaces(memory_api.ListNamespaces(max_depth=1)),
        "POST",
        "internal/store/namespaces",
        {"prefix": None, "suffix": None, "max_depth": 1, "limit": 100, "offset": 0},
        {"namespaces": [["a"]]},
        memory_api.Namespaces,
    ),
    (
        "save_memory",
        lambda m: m.save_memory(memory_api.SaveMemory(namespace=["m"], content="likes tea")),
        "POST",
        "internal/memories",
        {
            "namespace": ["m"],
            "content": "likes tea",
            "kind": "semantic",
            "key": None,
            "slot": None,
            "metadata": {},
        },
        {"key": "k", "created": True, "item": ITEM},
        memory_api.SavedMemory,
    ),
    (
        "search_memories",
        lambda m: m.search_memories(
            memory_api.SearchMemories(namespace_prefix=["m"], kind="procedural")
        ),
        "POST",
        "internal/memories/search",
        {
            "namespace_prefix": ["m"],
            "query": None,
            "kind": "procedural",
            "filter": None,
            "limit": 10,
            "offset": 0,
        },
        {"memories": [SCORED]},
        memory_api.FoundMemories,
    ),
    (
        "delete_memory",
        lambda m: m.delete_memory(memory_api.MemoryRef(namespace=["m"], key="k")),
        "POST",
        "internal/memories/delete",
        {"namespace": ["m"], "key": "k"},
        None,
        None,
    ),
    (
        "extraction",
        lambda m: m.extraction("run/1"),
        "GET",
        "internal/memories/extractions/run%2F1",
        None,
        {"run_id": "run/1", "thread_id": None, "memory_keys": []},
        memory_api.Extraction,
    ),
]


@pytest.mark.parametrize(
    ("ask", "verb", "path", "body", "answer", "model"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_the_client_builds_each_call_and_reads_its_answer(
    ask: Ask,
    verb: str,
    path: str,
    body: Any,
    answer: Any,
    model: type[pydantic.BaseModel] | None,
) -> None:
    call = FakeCall(always=answer)
    got: Any = asyncio.run(ask(memory_api.MemoryClient(call)))
    assert call.asked() == [(names.MEMORY, verb, path, body)]
    if answer is None:
        assert got is None
    else:
        assert isinstance(got, model or memory_api.Thread)
        assert got.model_dump(mode="json") == answer


def test_every_client_method_is_tested() -> None:
    methods = {n for n in vars(memory_api.MemoryClient) if not n.startswith("_")}
    assert methods == {case[0] for case in CASES}


def test_the_client_asks_the_app_it_was_given_and_passes_errors_on() -> None:
    async def refuse(app_id: str, method: str, **kw: Any) -> Any:
        raise InvokeError(app_id, 404, "no thread 't1'")

    call = FakeCall(always={"item_count": 0})
    asyncio.run(
        memory_api.MemoryClient(call, "memory-b").truncate("t1", memory_api.Truncate(count=0))
    )
    assert call.calls[0][0] == "memory-b"
    with pytest.raises(InvokeError) as err:
        asyncio.run(memory_api.MemoryClient(refuse).thread("t1"))
    assert err.value.status == 404


def test_requests_refuse_what_memory_refuses() -> None:
    for bad in (
        lambda: memory_api.ThreadCreate(thread_id="has spaces"),
        lambda: memory_api.ThreadCreate(metadata={"a": "nul\x00"}),
        lambda: memory_api.ItemsAdd(items=[{}] * (memory_api.MAX_ITEMS_PER_WRITE + 1)),
        lambda: memory_api.ItemsQuery(limit=0),
        lambda: memory_api.PutItem(namespace=[], key="k", value={}),
        lambda: memory_api.PutItem(namespace=["a"], key="k", value={}, index=True),
        lambda: memory_api.SaveMemory(namespace=["m"], content="x", kind="other"),
        lambda: memory_api.Truncate.model_validate({"count": 1, "extra": 1}),
    ):
        with pytest.raises(pydantic.ValidationError):
            bad()


def test_every_model_and_field_is_described() -> None:
    models = [
        v
        for v in vars(memory_api).values()
        if isinstance(v, type) and issubclass(v, pydantic.BaseModel)
    ]
    assert len(models) >= 30
    for model in models:
        assert model.__doc__, model
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"


# -- memory's routes serve the contract -----------------------------------------------


def _routes() -> list[APIRoute]:
    return [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]


def test_every_memory_route_takes_its_request_from_the_contract() -> None:
    internal = [r for r in _routes() if r.path.startswith("/internal/")]
    assert len(internal) == len(CASES)
    for route in internal:
        for param in route.dependant.body_params + route.dependant.query_params:
            model = param.field_info.annotation
            assert isinstance(model, type) and issubclass(model, pydantic.BaseModel), route.path
            assert model.__module__.startswith("agentia.contracts."), (route.path, model)
            assert model.model_config.get("extra") == "forbid", model
        answer = route.response_model
        if route.status_code != 204:
            assert answer.__module__.startswith("agentia.contracts."), (route.path, answer)
            # An answer may grow a field without breaking callers that do not know it yet.
            assert answer.model_config.get("extra") != "forbid", answer


def test_the_client_and_memorys_routes_agree() -> None:
    app = memory_app()

    async def scenario() -> None:
        async with DaprClient("http://sidecar", None, "test", transport=through_sidecar(app)) as c:
            memory = memory_api.MemoryClient(c.call)
            made = await memory.create_thread(memory_api.ThreadCreate(thread_id="t1"))
            assert made.created and made.item_count == 0
            again = await memory.create_thread(memory_api.ThreadCreate(thread_id="t1"))
            assert not again.created
            add = memory_api.ItemsAdd(items=[{"n": 1}, {"n": 2}, {"n": 3}])
            assert (await memory.add_items("t1", add)).item_count == 3
            run = memory_api.RunKey(run_id="r1", attempt=2, position=0)
            add = memory_api.ItemsAdd(items=[{"n": 4}], run=run)
            assert (await memory.add_items("t1", add)).item_count == 4
            query = memory_api.ItemsQuery(limit=2, run_id="r1", attempt=2)
            assert (await memory.items("t1", query)).items == [{"n": 3}, {"n": 4}]
            assert app.state.threads.seen[-1] == ("items", 2, "r1", 2)
            settle = memory_api.RunSettle(attempt=2, count=1)
            assert (await memory.settle_run("t1", "r1", settle)).item_count == 4
            assert (await memory.pop_item("t1")).item == {"n": 4}
            assert (await memory.truncate("t1", memory_api.Truncate(count=1))).item_count == 1
            patched = await memory.patch_thread("t1", memory_api.ThreadPatch(metadata={"a": 1}))
            assert patched.metadata == {"a": 1}
            copied = await memory.copy_thread("t1", memory_api.ThreadCopy(thread_id="t2"))
            assert copied.thread_id == "t2" and copied.item_count == 1
            found = await memory.search_threads(memory_api.ThreadSearch())
            assert [t.thread_id for t in found.threads] == ["t1", "t2"]
            await memory.clear_items("t2")
            assert (await memory.thread("t2")).item_count == 0
            await memory.delete_thread("t2")
            with pytest.raises(InvokeError) as err:
                await memory.thread("t2")
            assert (err.value.status, err.value.reason) == (404, "no thread 't2'")
            with pytest.raises(InvokeError) as err:
                await memory.copy_thread("t1", memory_api.ThreadCopy(thread_id="t1"))
            assert err.value.status == 409

            put = memory_api.PutItem(namespace=["a", "b"], key="k", value={"n": 1})
            await memory.put_item(put)
            got = await memory.get_item(memory_api.GetItem(namespace=["a", "b"], key="k"))
            assert got.value == {"n": 1} and got.created_at == STAMP
            hits = await memory.search_items(memory_api.SearchItems(namespace_prefix=["a"]))
            assert [(i.key, i.score) for i in hits.items] == [("k", 0.25)]
            spaces = await memory.list_namespaces(memory_api.ListNamespaces())
            assert spaces.namespaces == [["a", "b"]]
            await memory.delete_item(memory_api.ItemRef(namespace=["a", "b"], key="k"))
            with pytest.raises(InvokeError) as err:
                await memory.delete_item(memory_api.ItemRef(namespace=["a", "b"], key="k"))
            assert err.value.status == 404 and "no item" in err.value.reason

            save = memory_api.SaveMemory(namespace=["m"], content="likes tea", slot="drink")
            saved = await memory.save_memory(save)
            assert saved.created and saved.item.value["content"] == "likes tea"
            search = memory_api.SearchMemories(namespace_prefix=["m"], query="tea")
            assert (await memory.search_memories(search)).memories[0].score == 0.25
            await memory.delete_memory(memory_api.MemoryRef(namespace=["m"], key="m1"))
            assert (await memory.extraction("r1")).memory_keys == ["m1"]
            with pytest.raises(InvokeError) as err:
                await memory.extraction("r2")
            assert err.value.status == 404

    asyncio.run(scenario())


def test_memorys_answers_keep_their_json() -> None:
    """The answers as bytes on the wire: the same fields as before the contract (a store
    item read alone has no score; one found by a search has it, maybe null)."""
    app = memory_app()

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://memory") as http:
            made = await http.post("/internal/threads", json={"thread_id": "t1"})
            assert list(made.json()) == [*THREAD, "created"]
            await http.post(
                "/internal/store/items/put", json={"namespace": ["a"], "key": "k", "value": {}}
            )
            got = (
                await http.post("/internal/store/items/get", json={"namespace": ["a"], "key": "k"})
            ).json()
            assert got == {
                "namespace": ["a"],
                "key": "k",
                "value": {},
                "created_at": STAMP,
                "updated_at": STAMP,
            }
            found = (await http.post("/internal/store/items/search", json={})).json()
            assert found == {"items": [{**got, "score": 0.25}]}
            saved = (
                await http.post("/internal/memories", json={"namespace": ["m"], "content": "x"})
            ).json()
            assert set(saved) == {"key", "created", "item"} and "score" not in saved["item"]
            popped = (await http.post("/internal/threads/t1/items/pop", json={})).json()
            assert popped == {"item": None}
            assert (await http.get("/internal/threads/t1/items?limit=2&other=1")).status_code == 422

    asyncio.run(scenario())
