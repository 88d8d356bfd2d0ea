"""Who may call whom in the mesh, and which secrets each app may read.

One table, turned into Dapr's own enforcement: each callee's sidecar gets an
``accessControl`` section (the caller is known from its mTLS certificate, issued by Sentry)
and each sidecar a ``secrets.scopes`` section. The local mesh writes one Configuration per
app from ``components/config/configuration.yaml`` plus these sections; ``agentia kind
generate`` renders the same sections into the Kubernetes Configurations.

A call the table does not grant is refused by the callee's sidecar (HTTP 403 to the caller),
before it reaches the app.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Final

from agentia import names

# Sidecars ask Sentry for certificates in this trust domain (Dapr's default for apps) and
# this namespace (the one self-hosted Dapr uses; the Kubernetes overlay sets its own).
TRUST_DOMAIN: Final = "public"
NAMESPACE: Final = "default"
# Sentry, placement and scheduler identify themselves in this trust domain (daprd's default).
CONTROL_PLANE_TRUST_DOMAIN: Final = "localhost"


@dataclass(frozen=True)
class Operation:
    """One method path (``*`` one segment, ``**`` any number) and the HTTP verbs allowed on it."""

    path: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class Grant:
    """A caller allowed on a callee: every method, or only ``operations``."""

    caller: str
    operations: tuple[Operation, ...] = ()


def _only(*operations: tuple[str, str]) -> tuple[Operation, ...]:
    return tuple(Operation(path, tuple(verbs.split(","))) for path, verbs in operations)


# Callee -> who may invoke it. This is the call graph of the services, nothing more:
# - only the gateway starts runs on agent-runner; the scheduler starts and reads workflows
#   (a cron's fire) and reads runs (a drain); memory reads a run (memories from a run);
# - only agent-runner calls tool-mcp (the agents' tools);
# - memory answers the gateway, agent-runner (sessions, workflow transcripts) and tool-mcp
#   (the memory_search / memory_save tools);
# - the scheduler answers the gateway (crons, drains) and tool-mcp (schedule_agent_run);
# - the gateway answers the scheduler's budget question, its cron fires (a scheduled run is
#   the gateway's run) and their checks, and the drain CronJob's budget question (its public
#   API is plain HTTP);
# - the drain CronJob (Kubernetes) reads runs, as the scheduler's drain does locally.
CALLERS: Final[dict[str, tuple[Grant, ...]]] = {
    names.AGENT_RUNNER: (
        Grant(names.GATEWAY),
        Grant(
            names.SCHEDULER,
            _only(
                ("/internal/runs/*", "GET"),
                ("/internal/workflows", "POST"),
                ("/internal/workflows/check", "POST"),
                ("/internal/workflows/*", "GET"),
            ),
        ),
        Grant(names.MEMORY, _only(("/internal/runs/*", "GET"))),
        # The drain CronJob on Kubernetes (locally the scheduler drains).
        Grant(names.SCHEDULER_DRAIN, _only(("/internal/runs/*", "GET"))),
    ),
    names.TOOL_MCP: (Grant(names.AGENT_RUNNER),),
    names.MEMORY: (
        Grant(names.GATEWAY),
        Grant(names.AGENT_RUNNER),
        Grant(
            names.TOOL_MCP, _only(("/internal/memories", "POST"), ("/internal/memories/*", "POST"))
        ),
    ),
    names.SCHEDULER: (
        Grant(names.GATEWAY),
        Grant(names.TOOL_MCP, _only(("/internal/schedules", "POST"))),
    ),
    names.GATEWAY: (
        Grant(
            names.SCHEDULER,
            _only(
                ("/internal/budgets/*", "GET"),
                ("/internal/runs", "POST"),
                ("/internal/runs/check", "POST"),
            ),
        ),
        Grant(names.SCHEDULER_DRAIN, _only(("/internal/budgets/*", "GET"))),
    ),
}

# App -> the secrets it may read through the Dapr secrets API. Components still resolve
# their own secretKeyRefs (database URLs, broker URL) whatever these say.
SECRETS: Final[dict[str, tuple[str, ...]]] = {
    names.GATEWAY: (names.SECRET_GATEWAY_API_KEYS, names.SECRET_GATEWAY_JWT_KEY),
    names.AGENT_RUNNER: (names.SECRET_OPENAI_API_KEY,),
    names.MEMORY: (names.SECRET_POSTGRES_URL, names.SECRET_OPENAI_API_KEY),
    names.SCHEDULER: (),
    names.TOOL_MCP: (),
}


def app_env(app_id: str) -> dict[str, str]:
    """Environment that makes an app check its callers itself too (defence in depth):
    tool-mcp refuses any caller its policy does not name, even with the sidecar's ACL gone."""
    if app_id == names.TOOL_MCP:
        callers = ",".join(g.caller for g in CALLERS[names.TOOL_MCP])
        return {"AGENTIA_TOOL_ALLOWED_CALLERS": callers}
    return {}


def access_control(app_id: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
    """The ``accessControl`` section of ``app_id``'s Configuration (None: not a callee)."""
    grants = CALLERS.get(app_id)
    if grants is None:
        return None
    policies = []
    for grant in grants:
        policy: dict[str, Any] = {
            "appId": grant.caller,
            "defaultAction": "deny" if grant.operations else "allow",
            "trustDomain": TRUST_DOMAIN,
            "namespace": namespace,
        }
        if grant.operations:
            policy["operations"] = [
                {"name": op.path, "httpVerb": list(op.verbs), "action": "allow"}
                for op in grant.operations
            ]
        policies.append(policy)
    return {"defaultAction": "deny", "trustDomain": TRUST_DOMAIN, "policies": policies}


def secret_scopes(app_id: str) -> list[dict[str, Any]]:
    """The ``secrets.scopes`` section: ``app_id`` reads only its own secrets."""
    return [
        {
            "storeName": names.SECRET_STORE,
            "defaultAccess": "deny",
            "allowedSecrets": list(SECRETS.get(app_id, ())),
        }
    ]


def app_configuration(
    base: dict[str, Any], app_id: str, namespace: str = NAMESPACE
) -> dict[str, Any]:
    """``base`` (the shared Configuration) with ``app_id``'s access control and secret scopes."""
    doc = copy.deepcopy(base)
    doc["metadata"]["name"] = f"{base['metadata']['name']}-{app_id}"
    spec = doc.setdefault("spec", {})
    acl = access_control(app_id, namespace)
    if acl is not None:
        spec["accessControl"] = acl
    spec["secrets"] = {"scopes": secret_scopes(app_id)}
    return doc
