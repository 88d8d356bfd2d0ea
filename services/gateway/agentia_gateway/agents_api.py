"""Agents endpoints of the Agent Protocol (and LangGraph's ``/assistants`` names for them).

The definitions live in agent-runner, which publishes them; the gateway answers from its copy
of that catalog (``catalog.py``) and shapes the answer. Public routes: authentication
arrives with the gateway's API keys.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from agentia_gateway.catalog import Catalog
from agentia_gateway.deps import Catalogue
from agentia_gateway.schemas import ERRORS

router = APIRouter(tags=["Agents"], responses=ERRORS)


class AgentSearch(BaseModel):
    """Search agents by name and metadata, with paging (LangGraph's fields accepted)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, description="Exact agent name.")
    graph_id: str | None = Field(default=None, description="LangGraph's name for the name.")
    metadata: dict[str, Any] | None = Field(default=None, description="Metadata to match.")
    limit: int = Field(default=10, ge=1, le=1000, description="Page size.")
    offset: int = Field(default=0, ge=0, description="Items to skip.")
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = Field(
        default=None, description="Accepted: agents are listed by name."
    )
    sort_order: Literal["asc", "desc"] | None = Field(
        default=None, description="Accepted: ascending names."
    )
    select: list[str] | None = Field(default=None, description="Accepted and ignored.")


class AgentCount(BaseModel):
    """Which agents to count."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, description="Exact agent name.")
    graph_id: str | None = Field(default=None, description="LangGraph's name for the name.")
    metadata: dict[str, Any] | None = Field(default=None, description="Metadata to match.")


FILES_ONLY = (
    "agents are defined by YAML files in the agents folder (AGENTIA_AGENTS_DIR), which "
    "agent-runner reads when it starts; the API does not create, change or delete them"
)


def _agent(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "agent_id": spec["name"],
        "name": spec["name"],
        "description": spec.get("description", ""),
        "metadata": {"model": spec.get("model")},
        "capabilities": {"ap.io.messages": True, "ap.io.streaming": True},
    }


def _assistant(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "assistant_id": spec["name"],
        "graph_id": spec["name"],
        "name": spec["name"],
        "description": spec.get("description", ""),
        "metadata": {"model": spec.get("model")},
        "config": {},
        "version": 1,
    }


def _schemas(spec: dict[str, Any]) -> dict[str, Any]:
    output = spec.get("output_type") or {"type": "string"}
    return {
        "agent_id": spec["name"],
        "input_schema": {"type": ["string", "array"], "description": "Text or messages"},
        "output_schema": output,
        "state_schema": None,
        "config_schema": None,
    }


async def _specs(catalog: Catalog) -> list[dict[str, Any]]:
    """The gateway's copy of agent-runner's catalog (answers with agent-runner down)."""
    return list(await catalog.specs())


async def _one(catalog: Catalog, agent_id: str) -> dict[str, Any]:
    for spec in await _specs(catalog):
        if spec["name"] == agent_id:
            return spec
    raise HTTPException(404, f"no agent '{agent_id}'")


def _matches(spec: dict[str, Any], query: AgentSearch | AgentCount) -> bool:
    for wanted in (query.name, query.graph_id):
        if wanted is not None and spec["name"] != wanted:
            return False
    meta = {"model": spec.get("model")}
    return all(meta.get(k) == v for k, v in (query.metadata or {}).items())


@router.post("/agents/search")
async def search_agents(query: AgentSearch, catalog: Catalogue) -> list[dict[str, Any]]:
    found = [s for s in await _specs(catalog) if _matches(s, query)]
    return [_agent(s) for s in found[query.offset : query.offset + query.limit]]


@router.get("/agents/{agent_id}")
async def get_agent(agent_id: str, catalog: Catalogue) -> dict[str, Any]:
    return _agent(await _one(catalog, agent_id))


@router.get("/agents/{agent_id}/schemas")
async def get_agent_schemas(agent_id: str, catalog: Catalogue) -> dict[str, Any]:
    return _schemas(await _one(catalog, agent_id))


@router.post("/assistants/search")
async def search_assistants(query: AgentSearch, catalog: Catalogue) -> list[dict[str, Any]]:
    found = [s for s in await _specs(catalog) if _matches(s, query)]
    return [_assistant(s) for s in found[query.offset : query.offset + query.limit]]


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, catalog: Catalogue) -> dict[str, Any]:
    return _assistant(await _one(catalog, assistant_id))


@router.get("/assistants/{assistant_id}/schemas")
async def get_assistant_schemas(assistant_id: str, catalog: Catalogue) -> dict[str, Any]:
    schemas = _schemas(await _one(catalog, assistant_id))
    return {**schemas, "graph_id": assistant_id}


@router.post("/assistants/count", response_model=int)
async def count_assistants(query: AgentCount, catalog: Catalogue) -> int:
    return sum(1 for s in await _specs(catalog) if _matches(s, query))


@router.get("/assistants/{assistant_id}/graph")
async def get_assistant_graph(assistant_id: str, catalog: Catalogue) -> dict[str, Any]:
    """The agent as a graph: the agent, its tools and the agents it hands off to."""
    spec = await _one(catalog, assistant_id)
    nodes = [{"id": "__start__"}, {"id": spec["name"]}, {"id": "__end__"}]
    edges = [
        {"source": "__start__", "target": spec["name"]},
        {"source": spec["name"], "target": "__end__"},
    ]
    for tool in spec.get("builtin_tools") or []:
        nodes.append({"id": f"tool:{tool}"})
        edges.append({"source": spec["name"], "target": f"tool:{tool}", "conditional": True})
    for other in spec.get("handoffs") or []:
        edges.append({"source": spec["name"], "target": other, "conditional": True})
        nodes.append({"id": other})
    return {"nodes": nodes, "edges": edges}


@router.get("/assistants/{assistant_id}/subgraphs")
async def get_assistant_subgraphs(assistant_id: str, catalog: Catalogue) -> dict[str, Any]:
    await _one(catalog, assistant_id)
    return {}  # agents have no subgraphs


@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def get_assistant_subgraph(
    assistant_id: str, namespace: str, catalog: Catalogue
) -> dict[str, Any]:
    return await get_assistant_subgraphs(assistant_id, catalog)


@router.post("/assistants/{assistant_id}/versions")
async def get_assistant_versions(assistant_id: str, catalog: Catalogue) -> list[dict[str, Any]]:
    """One version: the definition agent-runner loaded."""
    return [_assistant(await _one(catalog, assistant_id))]


@router.post("/assistants")
async def create_assistant() -> None:
    raise HTTPException(400, FILES_ONLY)


@router.patch("/assistants/{assistant_id}")
@router.delete("/assistants/{assistant_id}")
@router.post("/assistants/{assistant_id}/latest")
async def change_assistant(assistant_id: str) -> None:
    raise HTTPException(400, FILES_ONLY)
