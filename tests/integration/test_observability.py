"""One trace per run across the mesh, and metrics from every service, through real sidecars:
a run posted to the gateway on a thread, with an MCP tool call, ends up as one trace in the
local trace store holding the gateway's request, agent-runner's run with the Agents SDK's
agent and tool spans, the MCP tool server, memory, and the sidecars between them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from agentia import names
from agentia.paths import repo_root
from agentia_tools.runtime import local_keys

from .conftest import Infra, wait_for

pytestmark = pytest.mark.integration
GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
STORE = f"http://127.0.0.1:{names.TRACESTORE_PORT}"
SERVICES = (names.GATEWAY, names.AGENT_RUNNER, names.TOOL_MCP, names.MEMORY)


@pytest.fixture(scope="module")
def run(infra: Infra, mesh_service: Callable[[str], None]) -> dict[str, Any]:
    for app_id in (names.MEMORY, names.TOOL_MCP, names.AGENT_RUNNER, names.GATEWAY):
        mesh_service(app_id)
    key = {"x-api-key": local_keys.read_local_key(infra.home) or ""}
    with httpx.Client(base_url=GATEWAY, headers=key, timeout=60) as client:
        thread = client.post("/threads", json={}).json()["thread_id"]
        resp = client.post(
            f"/threads/{thread}/runs/wait",
            json={"assistant_id": "researcher", "input": 'calculator {"expression": "6*7"}'},
        )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def spans(run_id: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{STORE}/api/runs/{run_id}", timeout=10).json()["spans"])


def test_a_run_is_one_trace_across_the_mesh(run: dict[str, Any]) -> None:
    run_id = run["run"]["run_id"]

    def complete() -> bool:
        found = spans(run_id)
        return {s["service"] for s in found} >= set(SERVICES) and any(
            s["name"].startswith("function") for s in found
        )

    wait_for(complete, 30, "the run's spans from every service")
    time.sleep(6)  # the last batches of the slower exporters
    found = spans(run_id)
    print("\n".join(sorted({f"{s['service']}: {s['name']}" for s in found})))
    assert len({s["trace_id"] for s in found}) == 1, "one trace"
    names_ = [s["name"] for s in found]
    assert any(n.startswith("run researcher") for n in names_)
    assert any(n.startswith("agent researcher") for n in names_), names_
    assert any(n == "function calculator" for n in names_), names_
    # The SDK's spans hang under the run's span, which hangs under the gateway's request.
    by_id = {s["span_id"]: s for s in found}
    tool = next(s for s in found if s["name"] == "function calculator")
    chain = []
    node: dict[str, Any] | None = tool
    while node is not None:
        chain.append(node["service"])
        node = by_id.get(node["parent_id"] or "")
    assert chain[0] == names.AGENT_RUNNER and chain[-1] == names.GATEWAY, chain


def test_agentia_trace_prints_the_tree(run: dict[str, Any]) -> None:
    run_id = run["run"]["run_id"]
    wait_for(lambda: len(spans(run_id)) > 5, 30, "spans")
    out = subprocess.run(
        [sys.executable, "-m", "agentia_tools", "trace", run_id],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert f"run {run_id}:" in out.stderr and "function calculator" in out.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "agentia_tools", "trace", "no-such-run", "--wait", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1 and "no spans for run 'no-such-run'" in missing.stderr
    assert "waiting up to 1s" in missing.stderr


def _metric(app_id: str, name: str, **labels: str) -> float:
    """A sample's value from ``app_id``'s /metrics (labels as Prometheus sorts them)."""
    text = httpx.get(f"http://127.0.0.1:{names.PORTS[app_id].app}/metrics", timeout=5).text
    inside = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    sample = f"{name}{{{inside}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} not on {app_id}'s /metrics")


def test_every_service_serves_its_metrics(run: dict[str, Any]) -> None:
    runner = names.AGENT_RUNNER
    assert _metric(runner, "agentia_runs_finished_total", agent="researcher", status="success")
    assert _metric(runner, "agentia_tool_call_seconds_count", tool="calculator") >= 1
    assert _metric(runner, "agentia_model_call_seconds_count") >= 1
    wait_route = "/threads/{thread_id}/runs/wait"
    http = "agentia_http_requests_total"
    ok = {"method": "POST", "status": "200"}
    assert _metric(names.GATEWAY, http, route=wait_route, service=names.GATEWAY, **ok) >= 1
    assert _metric(names.TOOL_MCP, http, route="/mcp", service=names.TOOL_MCP, **ok) >= 1
    assert _metric(names.MEMORY, "agentia_memory_rows", table="thread_items") >= 2
