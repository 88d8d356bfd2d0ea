"""The access table (agentia_tools.access) covers what the services' code does, and renders into
Dapr's Configuration sections the way Dapr reads them."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from agentia import names
from agentia.paths import repo_root
from agentia_tools import access

CONSTANTS = {v: k for k, v in vars(names).items() if isinstance(v, str) and k.isupper()}
SECRET_READ = re.compile(r"(?:find|get)_secret\(\s*names\.(SECRET_[A-Z_]+)")


def _code(app_id: str) -> str:
    folder = repo_root() / "services" / app_id / names.SERVICE_MODULES[app_id]
    return "\n".join(p.read_text() for p in sorted(Path(folder).glob("*.py")))


def test_every_app_reads_only_secrets_its_scope_allows() -> None:
    for app_id in names.APP_IDS:
        read = {getattr(names, c) for c in SECRET_READ.findall(_code(app_id))}
        assert read <= set(access.SECRETS[app_id]), (app_id, read - set(access.SECRETS[app_id]))


def _clients() -> dict[str, str]:
    """Each typed client of ``agentia.contracts`` and the app it calls unless told otherwise
    (``class MemoryClient`` … ``app_id: str = names.MEMORY``)."""
    found: dict[str, str] = {}
    for path in sorted((repo_root() / "src/agentia/contracts").glob("*.py")):
        pattern = r"class (\w+Client)\b.*?app_id: str = names\.([A-Z_]+)"
        for client, const in re.findall(pattern, path.read_text(), re.S):
            found[client] = getattr(names, const)
    return found


CLIENTS = _clients()


def _invokes(caller: str, target: str) -> bool:
    """Does ``caller``'s code invoke ``target`` through Dapr (``invoke(names.X`` or the
    gateway's ``call(client, names.X, "internal/...")``, a path from a service's contract:
    ``names.X, runner_api.WAIT``, or the target's typed client: ``MemoryClient(``)?"""
    const = CONSTANTS[target]
    code = _code(caller)
    clients = [name for name, app_id in CLIENTS.items() if app_id == target]
    return bool(
        re.search(rf"invoke\(\s*names\.{const}\b", code)
        or re.search(rf"names\.{const},\s*(f?\"internal/|BASE\b|\w+_api\.)", code)
        or any(re.search(rf"\b{name}\(", code) for name in clients)
    )


def test_every_invocation_in_the_code_is_granted() -> None:
    """A call the table forgot would only show as 403s at run time."""
    found = []
    for caller in names.APP_IDS:
        for target in names.APP_IDS:
            if caller != target and _invokes(caller, target):
                found.append((caller, target))
                grants = {g.caller for g in access.CALLERS.get(target, ())}
                assert caller in grants, f"{caller} invokes {target} but has no grant"
    # The detection itself works: these calls are known to be in the code.
    assert {
        (names.GATEWAY, names.AGENT_RUNNER),
        (names.GATEWAY, names.MEMORY),
        (names.GATEWAY, names.SCHEDULER),
        (names.SCHEDULER, names.GATEWAY),
        (names.SCHEDULER, names.AGENT_RUNNER),
        (names.AGENT_RUNNER, names.MEMORY),
        (names.MEMORY, names.AGENT_RUNNER),
    } <= set(found), found


def test_tool_mcp_calls_go_where_its_settings_point() -> None:
    """tool-mcp's memory and schedule tools invoke apps named in its settings."""
    settings = (repo_root() / "services/tool-mcp/agentia_toolmcp/settings.py").read_text()
    assert "default=names.MEMORY" in settings and "default=names.SCHEDULER" in settings
    memory = {g.caller: g for g in access.CALLERS[names.MEMORY]}
    scheduler = {g.caller: g for g in access.CALLERS[names.SCHEDULER]}
    assert {op.path for op in memory[names.TOOL_MCP].operations} >= {"/internal/memories"}
    assert {op.path for op in scheduler[names.TOOL_MCP].operations} == {"/internal/schedules"}


def test_access_control_is_deny_by_default_with_one_policy_per_caller() -> None:
    for app_id, grants in access.CALLERS.items():
        acl = access.access_control(app_id, namespace="ns1")
        assert acl is not None
        assert acl["defaultAction"] == "deny" and acl["trustDomain"] == access.TRUST_DOMAIN
        assert [p["appId"] for p in acl["policies"]] == [g.caller for g in grants]
        for policy, grant in zip(acl["policies"], grants, strict=True):
            assert policy["namespace"] == "ns1" and policy["trustDomain"] == access.TRUST_DOMAIN
            if grant.operations:
                assert policy["defaultAction"] == "deny"
                assert all(op["action"] == "allow" for op in policy["operations"])
                assert all(op["name"].startswith("/internal/") for op in policy["operations"])
            else:
                assert policy["defaultAction"] == "allow" and "operations" not in policy
    assert access.access_control("not-a-callee") is None


def test_app_configuration_adds_to_the_shared_one_and_leaves_it_alone() -> None:
    path = repo_root() / "components" / "config" / "configuration.yaml"
    base = yaml.safe_load(path.read_text())
    before = yaml.safe_dump(base)
    doc = access.app_configuration(base, names.MEMORY)
    assert yaml.safe_dump(base) == before
    assert doc["metadata"]["name"] == f"{base['metadata']['name']}-{names.MEMORY}"
    assert doc["spec"]["tracing"] == base["spec"]["tracing"]
    assert doc["spec"]["nameResolution"] == base["spec"]["nameResolution"]
    (scope,) = doc["spec"]["secrets"]["scopes"]
    assert scope == {
        "storeName": names.SECRET_STORE,
        "defaultAccess": "deny",
        "allowedSecrets": [names.SECRET_POSTGRES_URL, names.SECRET_OPENAI_API_KEY],
    }


def test_tool_mcp_checks_the_same_callers_itself() -> None:
    assert access.app_env(names.TOOL_MCP) == {"AGENTIA_TOOL_ALLOWED_CALLERS": names.AGENT_RUNNER}
    assert access.app_env(names.MEMORY) == {}
