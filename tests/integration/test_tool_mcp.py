"""MCP tools through a real sidecar: the official MCP client, and an agent run that uses them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from agentia import names

from .conftest import Sidecar

pytestmark = pytest.mark.integration


@pytest.fixture
def caller(mesh_sidecar: Callable[[str], Sidecar], mesh_service: Callable[[str], None]) -> Sidecar:
    mesh_service(names.TOOL_MCP)
    return mesh_sidecar(names.AGENT_RUNNER)


def with_session(
    app: Sidecar, work: Callable[[ClientSession], Any], target: str = names.TOOL_MCP
) -> Any:
    async def go() -> Any:
        url = f"{app.dapr}/v1.0/invoke/{target}/method/mcp"
        async with (
            httpx2.AsyncClient(headers=app.headers(), timeout=30) as http,
            streamable_http_client(url, http_client=http) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            return await work(session)

    return asyncio.run(go())


def test_official_client_lists_and_calls_every_builtin_tool(caller: Sidecar) -> None:
    async def work(s: ClientSession) -> dict[str, Any]:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        calc = await s.call_tool("calculator", {"expression": "(2 + 3) * 4"})
        clock = await s.call_tool("current_time", {"timezone": "Europe/Paris"})
        slow = await s.call_tool("wait", {"seconds": 0.1})
        return {"tools": tools, "calc": calc, "clock": clock, "slow": slow}

    got = with_session(caller, work)
    assert {"calculator", "current_time", "wait", "memory_search", "http_fetch"} <= set(
        got["tools"]
    )
    schema = got["tools"]["calculator"].input_schema
    assert schema["required"] == ["expression"]
    assert got["tools"]["calculator"].annotations.read_only_hint is True
    assert got["calc"].content[0].text == "20" and not got["calc"].is_error
    assert got["clock"].content[0].text.endswith(("+01:00", "+02:00"))
    assert got["slow"].content[0].text == "waited 0.1s"


def test_memory_tools_reach_the_memory_service_as_tool_mcp(caller: Sidecar) -> None:
    """agent-runner -> tool-mcp -> memory, each hop allowed by the access policies."""
    namespace = ["memories", "toolmcp-mesh", uuid.uuid4().hex[:8]]

    async def work(s: ClientSession) -> tuple[Any, Any]:
        saved = await s.call_tool(
            "memory_save",
            {"content": "The user's favourite colour is teal.", "namespace": namespace},
        )
        found = await s.call_tool(
            "memory_search", {"query": "favourite colour", "namespace": namespace}
        )
        return saved, found

    saved, found = with_session(caller, work)
    assert not saved.is_error and saved.structured_content["created"] is True, saved
    memories = found.structured_content["memories"]
    assert memories and "teal" in memories[0]["content"]


def test_bad_arguments_get_an_error_naming_the_field(caller: Sidecar) -> None:
    async def work(s: ClientSession) -> list[Any]:
        return [
            await s.call_tool("calculator", {"expr": "1"}),
            await s.call_tool("calculator", {"expression": "__import__('os')"}),
            await s.call_tool("current_time", {"timezone": "Mars/Olympus"}),
        ]

    missing, unsafe, zone = with_session(caller, work)
    assert missing.is_error and "expression" in missing.content[0].text
    assert unsafe.is_error and "expression" in unsafe.content[0].text
    assert zone.is_error and "timezone" in zone.content[0].text


def test_calls_without_the_dapr_token_are_refused(caller: Sidecar) -> None:
    resp = httpx.post(
        f"{caller.dapr}/v1.0/invoke/{names.TOOL_MCP}/method/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        timeout=10,
    )
    assert resp.status_code == 401


def test_agent_run_calls_an_mcp_tool_through_the_mesh(
    caller: Sidecar, mesh_service: Callable[[str], None]
) -> None:
    mesh_service(names.AGENT_RUNNER)
    run_id = f"run-{uuid.uuid4().hex[:12]}"
    resp = httpx.post(
        f"{caller.dapr}/v1.0/invoke/{names.AGENT_RUNNER}/method/internal/runs/wait",
        json={
            "run_id": run_id,
            "agent_id": "researcher",
            "input": 'calculator {"expression": "2 ** 10"}',
        },
        headers=caller.headers(),
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "success", resp.json()
    assert resp.json()["output"] == "[offline model] calculator returned: 1024"
