"""The gateway lists the agent definitions that agent-runner loaded (Agent Protocol + LangGraph)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from agentia import names
from agentia_tools.runtime import local_keys

from .conftest import Infra

pytestmark = pytest.mark.integration
GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
KEY: dict[str, str] = {}


@pytest.fixture(autouse=True)
def services(mesh_service: Callable[[str], None], infra: Infra) -> None:
    mesh_service(names.AGENT_RUNNER)
    mesh_service(names.GATEWAY)
    KEY["x-api-key"] = local_keys.read_local_key(infra.home) or ""


def test_search_get_and_schemas() -> None:
    found = httpx.post(
        f"{GATEWAY}/agents/search", json={"limit": 100}, timeout=10, headers=KEY
    ).json()
    assert {"assistant", "triage", "classifier", "researcher"} <= {a["agent_id"] for a in found}
    one = httpx.post(
        f"{GATEWAY}/agents/search", json={"name": "triage"}, timeout=10, headers=KEY
    ).json()
    assert [a["agent_id"] for a in one] == ["triage"]
    page = httpx.post(
        f"{GATEWAY}/agents/search", json={"limit": 2, "offset": 1}, timeout=10, headers=KEY
    )
    assert len(page.json()) == 2
    agent = httpx.get(f"{GATEWAY}/agents/classifier", timeout=10, headers=KEY).json()
    assert agent["name"] == "classifier" and agent["metadata"]["model"] == "offline"
    schemas = httpx.get(f"{GATEWAY}/agents/classifier/schemas", timeout=10, headers=KEY).json()
    assert schemas["output_schema"]["required"] == ["category", "confidence"]


def test_langgraph_assistants_names() -> None:
    found = httpx.post(f"{GATEWAY}/assistants/search", json={}, timeout=10, headers=KEY).json()
    assert all("assistant_id" in a and "graph_id" in a for a in found)
    assert (
        httpx.get(f"{GATEWAY}/assistants/triage", timeout=10, headers=KEY).json()["assistant_id"]
        == "triage"
    )


def test_bad_requests_get_a_4xx_with_a_reason() -> None:
    missing = httpx.get(f"{GATEWAY}/agents/nobody", timeout=10, headers=KEY)
    assert missing.status_code == 404 and "no agent 'nobody'" in missing.json()["detail"]
    bad_limit = httpx.post(f"{GATEWAY}/agents/search", json={"limit": 0}, timeout=10, headers=KEY)
    assert bad_limit.status_code == 422
    bad_json = httpx.post(
        f"{GATEWAY}/agents/search",
        content=b"{nope",
        timeout=10,
        headers={"content-type": "application/json", **KEY},
    )
    assert bad_json.status_code == 422
    unknown_field = httpx.post(
        f"{GATEWAY}/agents/search", json={"colour": "red"}, timeout=10, headers=KEY
    )
    assert unknown_field.status_code == 422
