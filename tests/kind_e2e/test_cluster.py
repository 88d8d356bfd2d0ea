"""The mesh on the real kind cluster, through its gateway's public API (as a user would).

`make test-kind` brings the cluster up (`agentia kind up`, reusing it when it exists) and
runs these. Each proves one promise of docs/kubernetes.md: everything is scheduled and
Ready on the three nodes; a run completes; a streamed run streams; a long-lived agent
(a Dapr workflow) survives its pod being deleted; a schedule fires.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from agentia import names
from agentia_workflows.contracts import AGENT_LOOP, APPROVAL_EVENT
from tests.sse import sse

from .conftest import NAMESPACE, kubectl, kubectl_json, wait_for

SLOW = 'wait {"seconds": 3}'  # the offline model calls its wait tool: a run of ~3 s
CALC = 'calculator {"expression": "%s"}'
pytestmark = pytest.mark.timeout(900)  # waits have their own deadlines, below this


def _job_pod(pod: dict[str, Any]) -> bool:
    return any(o["kind"] == "Job" for o in pod["metadata"].get("ownerReferences", []))


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod["status"].get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_three_nodes_and_every_pod_ready() -> None:
    nodes = kubectl_json("get", "nodes")["items"]
    assert len(nodes) == 3
    roles = sorted(
        "control-plane" if "control-plane" in n["metadata"]["name"] else "worker" for n in nodes
    )
    assert roles == ["control-plane", "worker", "worker"]
    assert all(_ready(n) for n in nodes)

    def not_ready() -> list[str]:
        pods = kubectl_json("get", "pods", "-A")["items"]
        return [p["metadata"]["name"] for p in pods if not _job_pod(p) and not _ready(p)]

    wait_for(lambda: not not_ready(), 600, "every pod Ready")
    # The drain CronJob's pods run to completion instead: one of its runs succeeded.
    jobs = kubectl_json("get", "jobs", "-n", NAMESPACE)["items"]
    wait_for(
        lambda: any(
            j["status"].get("succeeded")
            for j in kubectl_json("get", "jobs", "-n", NAMESPACE)["items"]
        ),
        180,
        f"a successful run of the drain CronJob ({len(jobs)} jobs so far)",
    )
    mesh = [p for p in kubectl_json("get", "pods", "-n", NAMESPACE)["items"] if not _job_pod(p)]
    apps = {p["metadata"]["labels"].get("app.kubernetes.io/name") for p in mesh}
    assert set(names.APP_IDS) | {"postgres", "rabbitmq", "redis"} <= apps
    # The mesh's sidecars were injected, and its pods spread over the workers.
    for pod in mesh:
        if pod["metadata"]["labels"].get("app.kubernetes.io/name") in names.APP_IDS:
            containers = [c["name"] for c in pod["spec"]["containers"]]
            assert "daprd" in containers, pod["metadata"]["name"]
    assert len({p["spec"]["nodeName"] for p in mesh if p["status"]["phase"] == "Running"}) >= 2


def test_a_run_completes_through_the_gateway(gateway: httpx.Client) -> None:
    done = gateway.post("/runs/wait", json={"agent_id": "assistant", "input": CALC % "6*7"})
    assert done.status_code == 200, done.text
    thread = gateway.post("/threads", json={}).json()["thread_id"]
    body = {"assistant_id": "assistant", "input": {"messages": [{"role": "user", "content": "hi"}]}}
    result = gateway.post(f"/threads/{thread}/runs/wait", json=body)
    assert result.status_code == 200, result.text
    assert result.json()["run"]["status"] == "success"
    roles = [m["role"] for m in result.json()["values"]["messages"]]
    assert roles == ["user", "assistant"]


def test_a_streamed_run_streams(gateway: httpx.Client) -> None:
    """Events arrive while the run is still going (the ~3 s tool), not all at its end."""
    thread = gateway.post("/threads", json={}).json()["thread_id"]
    body = {"input": SLOW, "stream_mode": ["values", "events"]}
    arrivals: list[tuple[float, dict[str, Any]]] = []
    started = time.monotonic()
    with gateway.stream("POST", f"/threads/{thread}/runs/stream", json=body) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        for event in sse(resp.iter_lines()):
            arrivals.append((time.monotonic() - started, event))
    kinds = [e["data"]["kind"] for _, e in arrivals if e.get("event") == "events"]
    assert arrivals[0][1]["event"] == "metadata"
    assert "tool.call" in kinds and kinds[-1] == "run.completed"
    tool_call = next(
        t for t, e in arrivals if e.get("event") == "events" and e["data"]["kind"] == "tool.call"
    )
    assert arrivals[-1][0] - tool_call >= 2.0, "the tool call was streamed before the run ended"


def _status(gateway: httpx.Client, instance: str) -> dict[str, Any]:
    resp = gateway.get(f"/workflows/{instance}")
    resp.raise_for_status()
    return dict(resp.json())


def test_a_workflow_survives_its_pod_being_deleted(gateway: httpx.Client) -> None:
    """An AgentLoop waits for an approval; agent-runner's pod (its workflow worker) is
    deleted at once; a new pod takes the workflow over and finishes it after approval."""
    instance = f"kind-{uuid.uuid4().hex[:8]}"
    body = {
        "workflow": AGENT_LOOP,
        "instance_id": instance,
        "input": {
            "agent_id": "assistant",
            "messages": [CALC % "6*7"],
            "approval_required": ["calculator"],
            "approval_timeout_s": 600,
        },
    }
    started = gateway.post("/workflows", json=body)
    assert started.status_code == 201, started.text

    def awaiting() -> bool:
        custom = _status(gateway, instance).get("custom_status")
        return isinstance(custom, dict) and custom.get("phase") == "awaiting_approval"

    wait_for(awaiting, 120, "the workflow awaiting approval")
    selector = f"app.kubernetes.io/name={names.AGENT_RUNNER}"
    before = set(kubectl("get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "name").split())
    kubectl(
        "delete",
        "pods",
        "-n",
        NAMESPACE,
        "-l",
        selector,
        "--grace-period=0",
        "--force",
        "--wait=false",
    )

    def replaced() -> bool:
        pods = kubectl_json("get", "pods", "-n", NAMESPACE, "-l", selector)["items"]
        fresh = [p for p in pods if f"pod/{p['metadata']['name']}" not in before]
        return bool(fresh) and all(_ready(p) for p in fresh)

    wait_for(replaced, 300, "a new agent-runner pod Ready")
    wait_for(awaiting, 180, "the workflow awaiting approval again, on the new pod")
    raised = gateway.post(
        f"/workflows/{instance}/events/{APPROVAL_EVENT}", json={"approved": True, "by": "e2e"}
    )
    assert raised.status_code in (200, 202), raised.text
    done = wait_for(
        lambda: (s := _status(gateway, instance))["status"] in ("COMPLETED", "FAILED") and s,
        180,
        "the workflow finished",
    )
    assert done["status"] == "COMPLETED", done
    assert done["output"]["outputs"] == ["[offline model] calculator returned: 42"]


def test_a_schedule_fires(gateway: httpx.Client) -> None:
    body = {"assistant_id": "assistant", "schedule": "*/5 * * * * *", "input": "tick"}
    created = gateway.post("/runs/crons", json=body)
    assert created.status_code == 200, created.text
    cron_id = created.json()["cron_id"]
    try:
        wait_for(lambda: gateway.get(f"/runs/crons/{cron_id}").json()["runs"] >= 1, 120, "a run")
        run_id = gateway.get(f"/runs/crons/{cron_id}").json()["last_run_id"]
        assert run_id.startswith(f"sched-{cron_id}-")
    finally:
        assert gateway.delete(f"/runs/crons/{cron_id}").status_code == 200


def test_memory_search_ranks_through_the_pgvector_index(gateway: httpx.Client) -> None:
    """The cluster's PostgreSQL (Debian trixie's 17) has pgvector: every memory pod builds
    or finds the HNSW index at start, and a search by meaning through the public API ranks
    the closer item first."""
    pods = kubectl_json("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=memory")
    running = [p for p in pods["items"] if p["status"]["phase"] == "Running"]
    assert running
    for pod in running:
        logs = kubectl("logs", "-n", NAMESPACE, pod["metadata"]["name"], "-c", "memory")
        assert "semantic search uses the pgvector HNSW index" in logs, pod["metadata"]["name"]
    ns = ["kind", uuid.uuid4().hex[:8]]
    for key, text in (("a", "I drink green tea every morning"), ("b", "my car is a red hatchback")):
        resp = gateway.put("/store/items", json={"namespace": ns, "key": key, "value": {"t": text}})
        assert resp.status_code in (200, 204), resp.text
    found = gateway.post(
        "/store/items/search", json={"namespace_prefix": ns, "query": "hot drinks"}
    )
    assert found.status_code == 200, found.text
    assert [i["key"] for i in found.json()["items"]] == ["a", "b"]
