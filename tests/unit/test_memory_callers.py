"""Each caller of memory keeps its own error policy over the typed client: the gateway
refuses what memory would refuse with memory's words and passes refusals on, agent-runner
reads them as DaprErrors (a 404: no thread), tool-mcp as ToolErrors; and ``DaprClient.call``
(the Call they wrap) with ``answer_reason``. Pure logic, over ``memory_fakes``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pydantic
import pytest

from agentia import names
from agentia.contracts import InvokeError
from agentia.contracts import memory as memory_api
from agentia.dapr import DaprClient, answer_reason
from tests.unit.memory_fakes import STAMP, FakeThreads, memory_app, through_sidecar

# -- callers keep their error policy --------------------------------------------------


def _memory_422(path: str, body: Any) -> str:
    """The reason memory's 422 for ``body`` reaches a caller with."""

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=memory_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://memory") as http:
            return await http.post(path, json=body)

    resp = asyncio.run(ask())
    assert resp.status_code == 422
    return answer_reason(resp)


@pytest.mark.parametrize(
    ("model", "path", "fields"),
    [
        (
            memory_api.PutItem,
            "/internal/store/items/put",
            {"namespace": [], "key": "k", "value": {}},
        ),
        (
            memory_api.PutItem,
            "/internal/store/items/put",
            {"namespace": ["a"], "key": "k", "value": {}, "index": True, "ttl": 10**9},
        ),
        (memory_api.SearchItems, "/internal/store/items/search", {"query": "q" * 9000}),
        (memory_api.ThreadCreate, "/internal/threads", {"metadata": {"a": "\x00"}}),
        (memory_api.ItemsAdd, "/internal/threads/t1/items", {"items": [{}] * 501}),
    ],
)
def test_the_gateway_refuses_a_bad_request_as_memory_would(
    model: type[pydantic.BaseModel], path: str, fields: dict[str, Any]
) -> None:
    from agentia_gateway.errors import Invalid
    from agentia_gateway.upstream import request

    with pytest.raises(Invalid) as refused:
        request(model, **fields)
    assert refused.value.status_code == 422
    assert refused.value.reason == _memory_422(path, fields)


def test_the_gateway_passes_refusals_on_and_turns_outages_into_503() -> None:
    from agentia_gateway.errors import Refused, Unavailable
    from agentia_gateway.upstream import refusal

    for status in (400, 404, 409, 413, 422):
        passed = refusal(InvokeError(names.MEMORY, status, "why"))
        assert isinstance(passed, Refused) and (passed.status_code, passed.reason) == (
            status,
            "why",
        )
    away = refusal(InvokeError(names.MEMORY, 500, "boom"))
    assert isinstance(away, Unavailable) and away.status_code == 503
    assert away.reason == "memory unavailable (500): boom"


def test_the_runner_reads_memorys_answers_as_dapr_errors() -> None:
    from agentia.dapr import DaprError
    from agentia_runner.memory_session import memory_errors, unless_no_thread

    with pytest.raises(DaprError) as err, memory_errors():
        raise InvokeError(names.MEMORY, 409, "attempt 1 is older than 2")
    assert (err.value.status, err.value.reason) == (409, "memory: attempt 1 is older than 2")
    with pytest.raises(DaprError) as err, memory_errors():
        memory_api.ItemsQuery(limit=0)
    assert err.value.status == 422 and err.value.reason.startswith("memory: limit: ")
    with unless_no_thread():
        raise InvokeError(names.MEMORY, 404, "no thread 't1'")
    with pytest.raises(DaprError), unless_no_thread():
        raise InvokeError(names.MEMORY, 503, "away")


def test_tool_mcp_turns_memorys_answers_into_tool_errors() -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    from agentia_toolmcp.sidecar import tool_error

    cases = {
        404: "memory_save: memory does not offer internal/memories (404): why",
        422: "memory_save: memory refused the request (422): why",
        503: "memory_save: memory is unavailable (503): why",
    }
    for status, words in cases.items():
        err = tool_error(
            "memory_save", "internal/memories", InvokeError(names.MEMORY, status, "why")
        )
        assert isinstance(err, ToolError) and str(err) == words


# -- DaprClient.call and answer_reason ------------------------------------------------


def _answer(status: int, **kw: Any) -> Any:
    """What DaprClient.call makes of the target answering ``status`` with ``kw``."""

    def target(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/invoke/memory/method/internal/threads/t1"
        return httpx.Response(status, **kw)

    async def ask() -> Any:
        transport = httpx.MockTransport(target)
        async with DaprClient("http://sidecar", None, "test", transport=transport) as client:
            return await client.call(names.MEMORY, "/internal/threads/t1", http_method="GET")

    return asyncio.run(ask())


def _reason(status: int, **kw: Any) -> str:
    with pytest.raises(InvokeError) as err:
        _answer(status, **kw)
    assert (err.value.app_id, err.value.status) == (names.MEMORY, status)
    return err.value.reason


def test_dapr_call_answers_json_or_none() -> None:
    assert _answer(200, json={"item_count": 1}) == {"item_count": 1}
    assert _answer(204) is None
    assert _answer(200) is None


def test_dapr_call_raises_the_targets_reason() -> None:
    assert _reason(404, json={"detail": "no thread 't1'"}) == "no thread 't1'"
    fastapi_422 = {
        "detail": [
            {"loc": ["body", "items"], "msg": "Input should be a valid list"},
            {"loc": ["query", "limit"], "msg": "Input should be greater than 0"},
        ]
    }
    assert _reason(422, json=fastapi_422) == (
        "items: Input should be a valid list; limit: Input should be greater than 0"
    )
    dapr = {"errorCode": "ERR_DIRECT_INVOKE", "message": "app memory is not reachable"}
    assert _reason(500, json=dapr) == "app memory is not reachable"
    assert _reason(500, json={"errorCode": "ERR_X"}) == "ERR_X"
    assert _reason(502, text="bad gateway") == "bad gateway"
    assert _reason(503, json=["odd"]) == "['odd']"
    assert _reason(500, text="x" * 900) == "x" * 500
    assert _reason(503) == "Service Unavailable"


def test_the_runners_session_and_transcripts_speak_the_contract() -> None:
    from agentia.dapr import DaprError
    from agentia_runner.memory_session import MemorySession
    from agentia_runner.workflow_worker import MemoryTranscripts

    app = memory_app()
    threads: FakeThreads = app.state.threads

    async def scenario() -> None:
        async with DaprClient("http://sidecar", None, "test", transport=through_sidecar(app)) as c:
            session = MemorySession(c, "t1", run_id="r1", attempt=2)
            assert await session.get_items() == []  # no thread yet: no items
            await session.clear_session()  # nor an error
            await session.add_items([{"role": "user", "content": "hi"}])
            assert threads.seen[-1] == ("run", "r1", 2, 0) and session.position == 1
            assert await session.get_items(limit=5) == [{"role": "user", "content": "hi"}]
            assert ("items", 5, "r1", 2) in threads.seen
            await session.settle()
            assert ("settle", "r1", 2, 1) in threads.seen
            assert await session.pop_item() == {"role": "user", "content": "hi"}
            assert session.position == 0
            with pytest.raises(DaprError) as err:
                bad = MemorySession(c, "t1", run_id="not valid")
                await bad.add_items([{"role": "user", "content": "x"}])
            assert err.value.status == 422 and err.value.reason.startswith("memory: run_id: ")

            transcripts = MemoryTranscripts(c)
            await transcripts.cut("t9", 0)  # makes the thread
            assert await transcripts.append("t9", [{"n": 1}, {"n": 2}]) == 2
            assert await transcripts.append("t9", []) == 2
            assert await transcripts.latest("t9", 1) == [{"n": 2}]
            with pytest.raises(DaprError) as err:
                await transcripts.latest("t404", 1)
            assert (err.value.status, err.value.reason) == (404, "memory: no thread 't404'")

    asyncio.run(scenario())


def test_tool_mcps_memory_tools_speak_the_contract() -> None:
    from agentia_toolmcp import tools_memory
    from agentia_toolmcp.server import ToolServer

    async def scenario() -> None:
        transport = through_sidecar(memory_app())
        async with DaprClient("http://sidecar", None, "test", transport=transport) as client:
            server = ToolServer("t", 5.0)
            tools_memory.register(server, lambda: client, names.MEMORY)
            args = {"content": "The user likes tea.", "namespace": ["m"], "slot": "drink"}
            saved: Any = await server.call_tool("memory_save", args)
            brief = {
                "namespace": ["m"],
                "key": "m1",
                "content": "The user likes tea.",
                "kind": "semantic",
                "updated_at": STAMP,
            }
            assert saved.structured_content == {"key": "m1", "created": True, **brief}
            args = {"query": "drinks", "namespace": ["m"]}
            found: Any = await server.call_tool("memory_search", args)
            assert found.structured_content == {"memories": [{**brief, "score": 0.25}]}

    asyncio.run(scenario())
