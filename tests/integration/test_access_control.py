"""Who may call whom, enforced by the sidecars (agentia.access): each denial shown through the
real mesh, with the allowed call beside it so a refusal cannot come from a broken route.

The caller's identity is its mTLS certificate from Sentry, so these also show that the
sidecars talk mutual TLS with identities naming their app.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import httpx
import pytest

from agentia import access, names
from agentia.runtime import mesh

from .conftest import Infra, ProbeApp, Sidecar

pytestmark = pytest.mark.integration
DENIED = "access control policy has denied access"


@pytest.fixture(scope="module")
def up(mesh_sidecar: Callable[[str], Sidecar]) -> dict[str, Sidecar]:
    return {app_id: mesh_sidecar(app_id) for app_id in names.APP_IDS}


def refused(resp: httpx.Response) -> bool:
    return resp.status_code == 403 and DENIED in resp.text


def test_an_app_outside_the_policies_reaches_no_service(
    up: dict[str, Sidecar], probe_apps: Callable[..., ProbeApp]
) -> None:
    stranger = probe_apps("stranger", subscribe=False)
    for target, verb, path in (
        (names.MEMORY, "GET", "internal/threads/nope"),
        (names.AGENT_RUNNER, "GET", "internal/agents"),
        (names.SCHEDULER, "GET", "internal/schedules"),
        (names.TOOL_MCP, "POST", "mcp"),
        (names.GATEWAY, "GET", "internal/budgets/nope"),
    ):
        resp = stranger.invoke(target, verb, path, timeout=20)
        assert refused(resp), (target, resp.status_code, resp.text)
    # The same call from an allowed caller reaches the app.
    assert up[names.GATEWAY].invoke(names.AGENT_RUNNER, "GET", "internal/agents").status_code == 200


def test_a_service_may_call_only_what_its_policy_grants(up: dict[str, Sidecar]) -> None:
    scheduler, memory, runner = up[names.SCHEDULER], up[names.MEMORY], up[names.AGENT_RUNNER]
    # The scheduler has no business with the agents' tools.
    assert refused(scheduler.invoke(names.TOOL_MCP, "POST", "mcp", {}))
    # Memory may read a run, but only the gateway starts one.
    assert memory.invoke(names.AGENT_RUNNER, "GET", "internal/runs/no-such-run").status_code == 404
    started = memory.invoke(
        names.AGENT_RUNNER, "POST", "internal/runs/wait", {"run_id": "r-x", "agent_id": "assistant"}
    )
    assert refused(started), started.text
    # agent-runner calls the tools; the gateway does not.
    assert refused(up[names.GATEWAY].invoke(names.TOOL_MCP, "POST", "mcp", {}))
    tools = runner.invoke(names.TOOL_MCP, "POST", "mcp", {})
    assert tools.status_code != 403 and DENIED not in tools.text, tools.text
    # tool-mcp may save a memory (its memory_save tool) but not read a thread.
    assert refused(up[names.TOOL_MCP].invoke(names.MEMORY, "GET", "internal/threads/nope"))


def test_each_app_reads_only_its_own_secrets(up: dict[str, Sidecar]) -> None:
    tools, gateway = up[names.TOOL_MCP], up[names.GATEWAY]
    url = f"/v1.0/secrets/{names.SECRET_STORE}"
    denied = httpx.get(
        f"{tools.dapr}{url}/{names.SECRET_GATEWAY_API_KEYS}", headers=tools.headers(), timeout=10
    )
    assert denied.status_code == 403, denied.text
    own = httpx.get(
        f"{gateway.dapr}{url}/{names.SECRET_GATEWAY_API_KEYS}",
        headers=gateway.headers(),
        timeout=10,
    )
    assert own.status_code == 200
    listed = httpx.get(f"{gateway.dapr}{url}/bulk", headers=gateway.headers(), timeout=10).json()
    assert names.SECRET_GATEWAY_API_KEYS in listed
    assert names.SECRET_POSTGRES_URL not in listed and names.SECRET_RABBITMQ_URL not in listed


def _tls_context(infra: Infra) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # SPIFFE identities are URIs, not host names
    ctx.load_verify_locations(cadata=mesh.trust_anchors_file(infra.home).read_text())
    ctx.set_alpn_protocols(["h2"])
    return ctx


def test_sidecars_speak_mtls_with_identities_from_sentry(
    up: dict[str, Sidecar], infra: Infra
) -> None:
    port = names.PORTS[names.MEMORY].dapr_internal_grpc
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        _tls_context(infra).wrap_socket(raw) as tls,
    ):
        cert = tls.getpeercert()
        assert cert is not None
        uris = [v for k, v in cert.get("subjectAltName", ()) if k == "URI"]
        assert uris == [f"spiffe://{access.TRUST_DOMAIN}/ns/{access.NAMESPACE}/{names.MEMORY}"]
        # No client certificate of ours: the sidecar refuses at the first bytes.
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
            tls.recv(1024)
    # A plain-text client gets no HTTP/2 answer: the connection ends, or a TLS alert.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        plain.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00" * 9)
        try:
            answer = plain.recv(1024)
        except ConnectionError:
            answer = b""
        assert answer in (b"",) or answer[:1] == b"\x15", answer
