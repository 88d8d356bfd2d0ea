"""The console's pieces that need no mesh: reading the gateway's SSE and refusals, shaping
its answers for the page, finding Chromium, and `agentia console` itself (a real Streamlit
process on a free port, pointed at a gateway that is not there)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from agentia_console import shaping
from agentia_console.client import GatewayError, SseFrame, error_from, parse_sse, stream_parts
from agentia_tools.cli.console import streamlit_command
from agentia_tools.cli.main import app
from agentia_tools.net import free_ports
from agentia_tools.runtime import browser
from agentia_tools.runtime.infra import InfraError

# What the gateway sends for `calculator {"expression": "6*7"}` with messages-tuple + events.
CALC_STREAM = """event: metadata
data: {"run_id": "r1", "thread_id": "t1"}

event: events
data: {"kind": "run.started", "seq": 0, "data": {"agent_id": "assistant"}}
id: 0

: keepalive

event: events
data: {"kind": "tool.call", "seq": 1, "data": {"name": "calculator", "arguments": "{\\"expression\\": \\"6*7\\"}", "call_id": "c1"}}
id: 1

event: events
data: {"kind": "tool.result", "seq": 2, "data": {"output": "42"}}
id: 2

event: messages
data: [{"type": "AIMessageChunk", "content": "[offline ", "id": "r1"}, {"run_id": "r1"}]
id: 3

event: messages
data: [{"type": "AIMessageChunk", "content": "model] 42", "id": "r1"}, {"run_id": "r1"}]
id: 4

event: events
data: {"kind": "run.completed", "seq": 5, "data": {"output": "[offline model] 42"}}
id: 5

"""  # noqa: E501


def test_a_streamed_run_becomes_deltas_tool_calls_and_an_end() -> None:
    frames = list(parse_sse(CALC_STREAM.splitlines()))
    assert [f.event for f in frames][:2] == ["metadata", "events"]
    assert frames[1].id == "0" and frames[1].data["kind"] == "run.started"
    parts = list(stream_parts(frames))
    assert [(p.kind, p.text) for p in parts] == [
        ("run", "r1"),
        ("tool_call", "calculator"),
        ("tool_result", "42"),
        ("delta", "[offline "),
        ("delta", "model] 42"),
        ("done", "success"),
    ]
    assert parts[1].data["arguments"] == '{"expression": "6*7"}'
    failed = parse_sse(["event: error", 'data: {"error": "RunError", "message": "boom"}', ""])
    assert [(p.kind, p.text) for p in stream_parts(failed)] == [("error", "boom")]


def test_refusals_carry_the_gateways_reason() -> None:
    err = error_from(401, {}, b'{"detail": "the API key is not valid (unknown or revoked)"}')
    assert err.status == 401
    assert err.message == (
        "gateway answered 401 (not authenticated): the API key is not valid (unknown or revoked)"
    )
    limited = error_from(429, {"retry-after": "17"}, b'{"detail": "rate limit of 5/min"}')
    assert limited.message.endswith("rate limit of 5/min (retry after 17 s)")
    down = error_from(503, {}, b"upstream down")
    assert "503 (unavailable, retry): upstream down" in down.message
    assert error_from(500, {}, b"").detail == "(no reason given)"
    assert GatewayError(None, "gateway unreachable").message == "gateway unreachable"


def test_a_threads_history_groups_tool_calls_with_their_results() -> None:
    messages = [
        {"role": "user", "content": 'calculator {"expression": "6*7"}', "id": "1"},
        {
            "role": "assistant",
            "content": "",
            "id": "2",
            "tool_calls": [{"name": "calculator", "args": '{"expression": "6*7"}', "id": "c1"}],
        },
        {"role": "tool", "content": "42", "id": "3", "tool_call_id": "c1"},
        {"role": "assistant", "content": "[offline model] calculator returned: 42", "id": "4"},
        {"role": "user", "content": "hi", "id": "5"},
    ]
    got = shaping.bubbles(messages)
    assert [(b.role, b.text) for b in got] == [
        ("user", 'calculator {"expression": "6*7"}'),
        ("assistant", "[offline model] calculator returned: 42"),
        ("user", "hi"),
    ]
    (tool,) = got[1].tools
    assert tool.label == 'tool call: calculator({"expression": "6*7"}) → 42'


def test_workflows_waiting_for_a_decision_are_recognised() -> None:
    waiting = {
        "instance_id": "w1",
        "workflow": "AgentLoop",
        "status": "RUNNING",
        "custom_status": {"phase": "awaiting_approval", "tool": "calculator", "arguments": "{}"},
    }
    step = shaping.waiting_for_approval(waiting)
    assert step is not None and step.tool == "calculator"
    assert "awaiting approval" in shaping.workflow_summary(waiting)
    done = {**waiting, "status": "COMPLETED", "output": {"outputs": ["a", "b"]}}
    assert shaping.waiting_for_approval(done) is None
    assert shaping.workflow_result(done) == "b"
    failed = {**done, "failure": {"type": "TaskFailed", "message": "boom"}}
    assert shaping.workflow_result(failed) == "failed: TaskFailed: boom"


def test_a_trace_lists_every_run_event_in_order() -> None:
    rows = shaping.trace(list(parse_sse(CALC_STREAM.splitlines())))
    assert [r.kind for r in rows] == [
        "metadata",
        "run.started",
        "tool.call",
        "tool.result",
        "run.completed",
    ]
    assert not shaping.has_raw_events([SseFrame("values", {})])


def test_without_root_chromium_is_named_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(InfraError, match=r"sudo apt-get install -y -q .*chromium"):
        browser.ensure_chromium(lambda _m: None, tmp_path / "chromium")
    present = tmp_path / "here"
    present.touch()
    assert browser.ensure_chromium(lambda _m: None, present) == present


def test_the_console_runs_streamlit_headless_without_watchers_or_statistics() -> None:
    cmd = streamlit_command("/p/page.py", "127.0.0.1", 8501)
    assert cmd[1:5] == ["-m", "streamlit", "run", "/p/page.py"]
    for flag in (
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--server.address=127.0.0.1",
        "--server.port=8501",
    ):
        assert flag in cmd


def test_the_console_needs_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTIA_HOME", str(tmp_path))
    monkeypatch.delenv("AGENTIA_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["console"])
    assert result.exit_code == 2
    assert "no API key" in result.output and "Traceback" not in result.output


def test_agentia_console_serves_the_page(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    env = {
        **os.environ,
        "AGENTIA_HOME": str(tmp_path),
        "AGENTIA_API_KEY": "agk_unit",
        "AGENTIA_GATEWAY_URL": "http://127.0.0.1:1",  # nothing there
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentia_tools", "console", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline, ok = time.monotonic() + 30, False
        while time.monotonic() < deadline and not ok and proc.poll() is None:
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).text == "ok"
            except httpx.HTTPError:
                time.sleep(0.2)
        assert ok, "the console never answered its health check"
        assert "Streamlit" in httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    text = out.decode()
    assert f"console: http://127.0.0.1:{port}" in text
    assert "gateway at http://127.0.0.1:1 unreachable" in text
