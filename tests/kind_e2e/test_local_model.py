"""The local model server on the kind cluster (`make test-kind-model`: overlay `local-model`):
llama-server with SmolLM2-135M as a Deployment, agent-runner's `compatible:` provider
pointed at its Service, a run of the agent `local` through the cluster's gateway.

Collected only with AGENTIA_KIND_LOCAL_MODEL=1 (tests/conftest.py): the other overlays have
no model server.
"""

from __future__ import annotations

import httpx
import pytest

from .conftest import NAMESPACE, kubectl_json, wait_for

pytestmark = pytest.mark.timeout(600)


def test_a_run_on_the_local_model_completes_through_the_cluster(gateway: httpx.Client) -> None:
    def ready() -> bool:
        dep = kubectl_json("get", "deployment", "model-server", "-n", NAMESPACE)
        return int(dep["status"].get("readyReplicas") or 0) >= 1

    wait_for(ready, 300, "the model server Ready")
    runner = kubectl_json("get", "deployment", "agent-runner", "-n", NAMESPACE)
    env = {
        e["name"]: e.get("value")
        for e in runner["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["AGENTIA_MODEL_BASE_URL"] == "http://model-server:8094/v1"
    thread = gateway.post("/threads", json={}).json()["thread_id"]
    body = {
        "assistant_id": "local",
        "input": {"messages": [{"role": "user", "content": "Say hello to the cluster."}]},
    }
    result = gateway.post(f"/threads/{thread}/runs/wait", json=body, timeout=300)
    assert result.status_code == 200, result.text
    assert result.json()["run"]["status"] == "success", result.text
    answer = result.json()["values"]["messages"][-1]
    assert answer["role"] == "assistant" and answer["content"].strip()
    assert not answer["content"].startswith("[offline model]")
