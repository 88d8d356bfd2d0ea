"""tool-mcp's built-in and user tools through real sidecars, with the official MCP client.

A tool-mcp replica configured for the test (allow-listed topic and host, a tools.yaml with
the example user module and two forwarded MCP servers) runs under its own app id with its
own daprd; the memory service and the mesh's tool-mcp run as in the mesh.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.client.session import ClientSession

from agentia import names
from agentia.events import ToolEvent
from agentia.paths import repo_root
from agentia_tools.net import free_ports
from agentia_tools.runtime import mesh

from .conftest import Infra, ProbeApp, wait_for
from .test_tool_mcp import with_session

pytestmark = pytest.mark.integration

EXAMPLES = repo_root() / "examples" / "user_tools"


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        port = self.headers.get("host", "").rsplit(":", 1)[-1]
        if self.path == "/hello":
            body = b"hello from the test"
            self.send_response(200)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/big":
            body = b"y" * 50_000
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/same-host":
            self.send_response(302)
            self.send_header("location", "/hello")
            self.end_headers()
        else:  # /elsewhere: the same server under another host name
            self.send_response(302)
            self.send_header("location", f"http://localhost:{port}/hello")
            self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def start_tool_server(
    infra: Infra, tmp_path: Path, app_id: str, extra_env: dict[str, str]
) -> tuple[names.AppPorts, Callable[[], None]]:
    """A tool-mcp replica under ``app_id`` with its own daprd: its ports and stop function.
    Its app id is in no access policy: it may call no mesh service, and anyone may call it."""
    ports = names.AppPorts(*free_ports(5))
    env = {**os.environ, **mesh.app_environment(app_id, ports, infra.tokens), **extra_env}
    log = (tmp_path / f"{app_id}.log").open("wb")
    app = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "agentia_toolmcp.app:create_app", "--factory"),
            *("--host", "127.0.0.1", "--port", str(ports.app), "--no-access-log"),
        ],
        cwd=repo_root(),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    side = subprocess.Popen(
        mesh.sidecar_command(infra.bins, app_id, ports),
        cwd=infra.home,
        env=env,
        stdout=(tmp_path / f"{app_id}-dapr.log").open("wb"),
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        for proc in (side, app):
            proc.terminate()
        for proc in (side, app):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    def ready() -> bool:
        for proc in (app, side):
            if proc.poll() is not None:
                raise RuntimeError(f"{app_id} exited: {(tmp_path / f'{app_id}.log').read_text()}")
        side_ok = httpx.get(f"http://127.0.0.1:{ports.dapr_http}/v1.0/healthz", timeout=2)
        return side_ok.status_code == 204

    try:
        wait_for(ready, 60, f"tool server {app_id}")
    except Exception:
        stop()
        raise
    return ports, stop


@pytest.fixture
def tools(
    infra: Infra,
    tmp_path: Path,
    probe_apps: Callable[..., ProbeApp],
    mesh_service: Callable[[str], None],
    web: str,
) -> Iterator[tuple[ProbeApp, str]]:
    """(caller, app id of the configured tool server). The caller also subscribes to the one
    allowed topic, and stands in for a scheduler that lacks the schedules endpoint. Another
    plain tool server stands in for the MCP servers it forwards, by app id and by URL."""
    mesh_service(names.MEMORY)
    caller = probe_apps("tools")
    upstream_id = f"probe-upstream-{uuid.uuid4().hex[:8]}"
    upstream, stop_upstream = start_tool_server(infra, tmp_path, upstream_id, {})
    app_id = f"probe-toolmcp-{uuid.uuid4().hex[:8]}"
    direct = f"http://127.0.0.1:{upstream.app}/mcp"
    config = tmp_path / "tools.yaml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "modules": [{"module": "weather_offline", "path": str(EXAMPLES)}],
                "servers": [
                    {"name": "core", "app_id": upstream_id, "prefix": "core_"},
                    {
                        "name": "direct",
                        "url": direct,
                        "headers": {"dapr-api-token": "${APP_API_TOKEN}"},
                        "prefix": "direct_",
                        "allow": ["current_time"],
                    },
                ],
                "tools": {"wait": {"timeout_s": 1}, "publish_event": {"requires_approval": True}},
            }
        )
    )
    try:
        _, stop = start_tool_server(
            infra,
            tmp_path,
            app_id,
            {
                "AGENTIA_TOOLS_CONFIG": str(config),
                "AGENTIA_TOOL_HTTP_ALLOW_HOSTS": "127.0.0.1",
                "AGENTIA_TOOL_HTTP_MAX_BYTES": "1000",
                "AGENTIA_TOOL_PUBLISH_TOPICS": caller.topic,
                "AGENTIA_TOOL_SCHEDULER_APP_ID": caller.app_id,
                "AGENTIA_TOOL_ALLOWED_CALLERS": caller.app_id,
            },
        )
    except Exception:
        stop_upstream()
        raise
    yield caller, app_id
    stop()
    stop_upstream()


def text(result: Any) -> str:
    return str(result.content[0].text)


def test_every_builtin_and_user_tool_through_the_sidecar(
    tools: tuple[ProbeApp, str], web: str
) -> None:
    caller, app_id = tools
    namespace = ["memories", "toolmcp-test", uuid.uuid4().hex[:8]]

    async def work(s: ClientSession) -> dict[str, Any]:
        out: dict[str, Any] = {"tools": {t.name: t for t in (await s.list_tools()).tools}}
        calls: dict[str, tuple[str, dict[str, Any]]] = {
            "calc": ("calculator", {"expression": "6 * 7"}),
            "clock": ("current_time", {"timezone": "UTC"}),
            "saved": (
                "memory_save",
                {"content": "The user's favourite colour is teal.", "namespace": namespace},
            ),
            "found": ("memory_search", {"query": "favourite colour", "namespace": namespace}),
            "published": ("publish_event", {"topic": caller.topic, "data": {"hello": "mesh"}}),
            "refused_topic": ("publish_event", {"topic": names.TOPIC_RUNS_REQUESTED, "data": {}}),
            "fetched": ("http_fetch", {"url": f"{web}/same-host"}),
            "big": ("http_fetch", {"url": f"{web}/big"}),
            "refused_host": ("http_fetch", {"url": web.replace("127.0.0.1", "localhost")}),
            "redirected_away": ("http_fetch", {"url": f"{web}/elsewhere"}),
            "scheduled": (
                "schedule_agent_run",
                {"name": "daily", "agent_id": "assistant", "input": "hi", "cron": "0 9 * * *"},
            ),
            "weather": ("weather_forecast", {"city": "Lisbon"}),
            "core_calc": ("core_calculator", {"expression": "2 ** 8"}),
            "direct_clock": ("direct_current_time", {"timezone": "Asia/Tokyo"}),
            "slow": ("wait", {"seconds": 10}),
            "bad": ("memory_search", {"query": "", "limit": 500}),
        }
        for key, (name, args) in calls.items():
            out[key] = await s.call_tool(name, args)
        return out

    got = with_session(caller, work, app_id)
    listed = got["tools"]
    assert {
        "calculator",
        "current_time",
        "wait",
        "memory_search",
        "memory_save",
        "publish_event",
        "schedule_agent_run",
        "http_fetch",
        "weather_forecast",
        "core_calculator",
        "core_memory_save",
        "direct_current_time",
    } <= set(listed)
    assert "direct_calculator" not in listed  # not on that server's allow list
    assert listed["memory_save"].annotations.destructive_hint is True
    assert listed["memory_search"].input_schema["required"] == ["query"]
    assert listed["schedule_agent_run"].meta["agentia/requires_approval"] is True
    assert listed["publish_event"].meta["agentia/requires_approval"] is True  # tools.yaml
    assert listed["core_calculator"].meta["agentia/source"] == "core"

    for key in ("calc", "clock", "published", "fetched", "big", "weather"):
        assert not got[key].is_error, (key, text(got[key]))
    assert text(got["calc"]) == "42"
    # Memory answers tool-mcp, not a server under another app id (agentia_tools.access); the
    # mesh's own tool-mcp saves and finds memories in test_tool_mcp.py.
    for key in ("saved", "found"):
        assert got[key].is_error and "403" in text(got[key]), (key, text(got[key]))
    assert got["fetched"].structured_content["text"] == "hello from the test"
    assert got["big"].structured_content["truncated"] is True
    assert got["big"].structured_content["bytes"] == 1000
    assert got["weather"].structured_content["sky"] == "sunny"
    assert text(got["core_calc"]) == "256" and not got["core_calc"].is_error
    assert text(got["direct_clock"]).endswith("+09:00")

    assert got["refused_topic"].is_error and "topic: " in text(got["refused_topic"])
    assert got["refused_host"].is_error and "not on the allow-list" in text(got["refused_host"])
    assert got["redirected_away"].is_error and "another host" in text(got["redirected_away"])
    assert got["scheduled"].is_error
    assert "does not offer internal/schedules (404)" in text(got["scheduled"])
    assert got["slow"].is_error and "wait: the call timed out after 1s" in text(got["slow"])
    assert got["bad"].is_error
    assert "query" in text(got["bad"]) and "limit" in text(got["bad"])

    event_id = got["published"].structured_content["event_id"]

    def delivered() -> bool:
        return any(e.get("id") == event_id for e in caller.received()["received"])

    wait_for(delivered, 20, "the published event")
    envelope = next(e for e in caller.received()["received"] if e.get("id") == event_id)
    assert envelope["type"] == ToolEvent.cloudevent_type()
    assert envelope["data"]["data"] == {"hello": "mesh"}
    assert envelope["data"]["published_by"] == app_id


def test_only_allowed_callers_reach_the_tools(
    tools: tuple[ProbeApp, str], probe_apps: Callable[..., ProbeApp]
) -> None:
    caller, app_id = tools
    intruder = probe_apps("intruder", subscribe=False)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    mcp_headers = {"accept": "application/json, text/event-stream"}
    url = f"{intruder.dapr}/v1.0/invoke/{app_id}/method/mcp"
    refused = httpx.post(url, json=body, headers={**intruder.headers(), **mcp_headers}, timeout=10)
    assert refused.status_code == 403, refused.text
    assert intruder.app_id in refused.json()["detail"]
    # Claiming to be the allowed app does not help: the callee's sidecar sets the header.
    spoofed = httpx.post(
        url,
        json=body,
        headers={**intruder.headers(), **mcp_headers, "dapr-caller-app-id": caller.app_id},
        timeout=10,
    )
    assert spoofed.status_code == 403, spoofed.text
    assert with_session(caller, lambda s: s.list_tools(), app_id).tools


def test_a_bad_user_module_stops_the_start_up(infra: Infra, tmp_path: Path) -> None:
    app_id = f"probe-badtools-{uuid.uuid4().hex[:6]}"
    with pytest.raises(RuntimeError) as failed:
        start_tool_server(infra, tmp_path, app_id, {"AGENTIA_TOOL_MODULES": "no_such_user_tools"})
    assert "tool module 'no_such_user_tools': cannot import it" in str(failed.value)
