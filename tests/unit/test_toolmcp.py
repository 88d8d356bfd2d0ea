"""tool-mcp's pure parts: allow-lists, schedule bodies, tools.yaml, user modules, timeouts,
approval marks. (Through a real sidecar: tests/integration/test_tool_mcp*.py.)"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.server.mcpserver.exceptions import ToolError

from agentia.dapr import DaprClient
from agentia.paths import repo_root
from agentia_toolmcp import tools_http
from agentia_toolmcp.access import caller_allowed
from agentia_toolmcp.config import (
    ModuleEntry,
    ToolConfigError,
    expand_env,
    import_module,
    load_config,
    register_module,
)
from agentia_toolmcp.server import REQUIRES_APPROVAL, TIMEOUT_S, ToolServer
from agentia_toolmcp.settings import ToolMcpSettings
from agentia_toolmcp.tools import build_server
from agentia_toolmcp.tools_events import check_topic
from agentia_toolmcp.tools_schedule import schedule_request

EXAMPLES = repo_root() / "examples" / "user_tools"


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> ToolMcpSettings:
    base = {
        "APP_ID": "tool-mcp",
        "APP_PORT": "8004",
        "DAPR_HTTP_PORT": "3504",
        "DAPR_GRPC_PORT": "31105",
        "DAPR_API_TOKEN": "t1",
        "APP_API_TOKEN": "t2",
    }
    for key, value in {**base, **env}.items():
        monkeypatch.setenv(key, value)
    return ToolMcpSettings()


def no_sidecar() -> DaprClient:
    raise AssertionError("no sidecar in unit tests")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_settings_split_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        monkeypatch,
        AGENTIA_TOOL_HTTP_ALLOW_HOSTS=" 127.0.0.1, *.example.org ",
        AGENTIA_TOOL_PUBLISH_TOPICS="a.b",
        AGENTIA_TOOL_MODULES="",
    )
    assert s.http_allow_hosts == ["127.0.0.1", "*.example.org"]
    assert s.publish_topics == ["a.b"] and s.tool_modules == []


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1", True),
        ("docs.example.org", True),
        ("DOCS.Example.org.", True),
        ("example.org", False),
        ("evil-example.org", False),
        ("localhost", False),
    ],
)
def test_host_allow_list(host: str, ok: bool) -> None:
    assert tools_http.host_allowed(host, ["127.0.0.1", "*.example.org"]) is ok


def test_check_url_names_the_field() -> None:
    for url in ("ftp://127.0.0.1/x", "http://10.0.0.1/", "not a url", "file:///etc/passwd"):
        with pytest.raises(ToolError, match=r"^url: "):
            tools_http.check_url(url, ["127.0.0.1"])
    assert tools_http.check_url("http://127.0.0.1:9/x", ["127.0.0.1"]).port == 9
    with pytest.raises(ToolError, match="not on the allow-list"):
        tools_http.check_url("http://127.0.0.1/", [])


def test_redirects_stay_on_the_host() -> None:
    here = httpx.URL("http://127.0.0.1:8080/a/b")
    assert str(tools_http.redirect_target(here, "../c", ["127.0.0.1"])).endswith("/c")
    with pytest.raises(ToolError, match="another host"):
        tools_http.redirect_target(here, "http://127.0.0.2/", ["127.0.0.1", "127.0.0.2"])


def fetch_server(
    handler: Callable[[httpx.Request], httpx.Response], hosts: list[str], max_bytes: int = 100
) -> ToolServer:
    server = ToolServer("t", 5.0)
    tools_http.register(server, hosts, max_bytes, transport=httpx.MockTransport(handler))
    return server


def test_http_fetch_caps_the_size_and_refuses_cross_host_redirects() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/big":
            return httpx.Response(200, text="x" * 1000, headers={"content-type": "text/plain"})
        if request.url.path == "/away":
            return httpx.Response(302, headers={"location": "http://other.test/"})
        if request.url.path == "/here":
            return httpx.Response(301, headers={"location": "/big"})
        return httpx.Response(200, content=b"\x89PNG", headers={"content-type": "image/png"})

    server = fetch_server(handler, ["site.test", "other.test"])
    big = run(server.call_tool("http_fetch", {"url": "http://site.test/here"}))
    data = big.structured_content
    assert data["truncated"] is True and data["bytes"] == 100 and data["url"].endswith("/big")
    image = run(server.call_tool("http_fetch", {"url": "http://site.test/png"}))
    assert image.structured_content["text"] is None
    with pytest.raises(ToolError, match="another host"):
        run(server.call_tool("http_fetch", {"url": "http://site.test/away"}))


def test_topics_are_refused_unless_allowed() -> None:
    check_topic("ok.topic", ["ok.topic"])
    with pytest.raises(ToolError, match=r"^topic: 'x' is not an allowed topic \(allowed: ok"):
        check_topic("x", ["ok.topic"])


def test_schedule_request_takes_exactly_one_timing() -> None:
    req = schedule_request("n", "assistant", "hi", None, 60.0, None)
    assert req.model_dump(mode="json", exclude_defaults=True) == {
        "schedule_id": "n",
        "interval_s": 60.0,
        "target": {"agent_id": "assistant", "input": "hi"},
    }
    for timing in ((None, None, None), ("* * * * *", 5.0, None)):
        with pytest.raises(ToolError, match=r"^cron: give exactly one"):
            schedule_request("n", "a", "i", *timing)
    # What the scheduler would refuse is refused before the call, naming the field.
    with pytest.raises(ToolError, match=r"^schedule_agent_run: cron: Value error, cron: '61 "):
        schedule_request("n", "a", "i", "61 * * * *", None, None)
    with pytest.raises(ToolError, match=r"^schedule_agent_run: schedule_id: String should"):
        schedule_request("Not_An_Id", "a", "i", None, 60.0, None)


def test_expand_env_names_what_is_missing() -> None:
    assert expand_env("Bearer ${TOK}", {"TOK": "abc"}) == "Bearer abc"
    with pytest.raises(ToolConfigError, match="servers\\[x\\]: environment variable NOPE"):
        expand_env("${NOPE}", {}, where="servers[x]")


def test_tools_yaml_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text("servers:\n  - {name: a, app_id: x, url: http://y/mcp}\n")
    with pytest.raises(ToolConfigError, match=r"servers\.0: Value error, give exactly one"):
        load_config(path)
    path.write_text("tools:\n  calculator: {requires_aproval: true}\n")
    with pytest.raises(ToolConfigError, match="requires_aproval: Extra inputs"):
        load_config(path)
    path.write_text("modules: [: bad")
    with pytest.raises(ToolConfigError, match="not valid YAML"):
        load_config(path)


def test_a_module_that_cannot_be_imported_is_named() -> None:
    with pytest.raises(ToolConfigError, match=r"^tool module 'no_such_tools_mod': cannot import"):
        import_module(ModuleEntry(module="no_such_tools_mod"), Path.cwd())


def test_user_modules_register_or_list_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "listed_tools.py").write_text(
        textwrap.dedent('''
        def shout(text: str) -> str:
            """Upper-case the text."""
            return text.upper()

        TOOLS = [shout]
        ''')
    )
    (tmp_path / "empty_tools.py").write_text("X = 1\n")
    server = ToolServer("t", 5.0)
    assert register_module(server, import_module(ModuleEntry(module="listed_tools"), tmp_path)) == [
        "shout"
    ]
    weather = import_module(ModuleEntry(module="weather_offline", path="."), EXAMPLES)
    assert register_module(server, weather) == ["weather_forecast"]
    with pytest.raises(ToolConfigError, match="'empty_tools': has neither register"):
        register_module(server, import_module(ModuleEntry(module="empty_tools"), tmp_path))
    got = run(server.call_tool("weather_forecast", {"city": "Oslo", "unit": "fahrenheit"}))
    assert got.structured_content["temperature"] == 39.2


def test_build_server_applies_tools_yaml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "tools.yaml"
    config.write_text(
        f"modules:\n  - {{module: weather_offline, path: {EXAMPLES}}}\n"
        "tools:\n  publish_event: {requires_approval: true}\n  wait: {timeout_s: 0.2}\n"
    )
    server = build_server(settings(monkeypatch, AGENTIA_TOOLS_CONFIG=str(config)), no_sidecar)
    tools = {t.name: t for t in run(server.list_tools())}
    assert {"calculator", "memory_search", "http_fetch", "weather_forecast"} <= set(tools)
    assert tools["publish_event"].meta[REQUIRES_APPROVAL] is True
    assert tools["schedule_agent_run"].meta[REQUIRES_APPROVAL] is True
    assert tools["calculator"].meta[REQUIRES_APPROVAL] is False
    assert tools["schedule_agent_run"].annotations.destructive_hint is True
    assert tools["wait"].meta[TIMEOUT_S] == 0.2
    with pytest.raises(ToolError, match=r"^wait: the call timed out after 0.2s"):
        run(server.call_tool("wait", {"seconds": 5}))


def test_build_server_refuses_a_bad_module(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(monkeypatch, AGENTIA_TOOL_MODULES="agentia_toolmcp.nope")
    with pytest.raises(ToolConfigError, match=r"tool module 'agentia_toolmcp\.nope'"):
        build_server(s, no_sidecar)


def test_settings_for_unknown_tools_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "tools.yaml"
    config.write_text("tools:\n  calculater: {requires_approval: true}\n")
    with pytest.raises(ToolConfigError, match="unknown tools: \\['calculater'\\]"):
        build_server(settings(monkeypatch, AGENTIA_TOOLS_CONFIG=str(config)), no_sidecar)


def test_caller_allow_list() -> None:
    assert caller_allowed([], [])
    assert caller_allowed(["agent-runner"], ["agent-runner"])
    assert not caller_allowed(["gateway"], ["agent-runner"])
    assert not caller_allowed(["agent-runner", "gateway"], ["agent-runner"])
    assert not caller_allowed([], ["agent-runner"])
