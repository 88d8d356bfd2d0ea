"""Who may call whom, enforced by the sidecars (agentia_tools.access): each denial shown through the
real mesh, with the allowed call beside it so a refusal cannot come from a broken route.

The caller's identity is its mTLS certificate from Sentry, so these also show that the
sidecars talk mutual TLS with identities naming their app.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from agentia import names
from agentia_tools import access
from agentia_tools.runtime import mesh

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
    calls = [
        (names.MEMORY, "GET", "internal/threads/nope"),
        (names.AGENT_RUNNER, "GET", "internal/agents"),
        (names.SCHEDULER, "GET", "internal/schedules"),
        (names.TOOL_MCP, "POST", "mcp"),
        (names.GATEWAY, "GET", "internal/budgets/nope"),
    ]
    # At once: Dapr retries a refused call for about 4 s before it answers 403.
    with ThreadPoolExecutor(len(calls)) as pool:
        answers = pool.map(lambda c: stranger.invoke(*c, timeout=30), calls)
    for (target, _, _), resp in zip(calls, answers, strict=True):
        assert refused(resp), (target, resp.status_code, resp.text)
    # The same call from an allowed caller reaches the app.
    assert up[names.GATEWAY].invoke(names.AGENT_RUNNER, "GET", "internal/agents").status_code == 200


def test_a_service_may_call_only_what_its_policy_grants(up: dict[str, Sidecar]) -> None:
    scheduler, memory, runner = up[names.SCHEDULER], up[names.MEMORY], up[names.AGENT_RUNNER]
    start = {"run_id": "r-x", "agent_id": "assistant"}
    denied = {
        # The scheduler has no business with the agents' tools.
        "scheduler -> tool-mcp": (scheduler, names.TOOL_MCP, "POST", "mcp", {}),
        # Memory may read a run (below), but only the gateway starts one.
        "memory starts a run": (memory, names.AGENT_RUNNER, "POST", "internal/runs/wait", start),
        # agent-runner calls the tools; the gateway does not.
        "gateway -> tool-mcp": (up[names.GATEWAY], names.TOOL_MCP, "POST", "mcp", {}),
        # tool-mcp may save a memory (its memory_save tool) but not read a thread.
        "tool-mcp reads a thread": (
            up[names.TOOL_MCP],
            names.MEMORY,
            "GET",
            "internal/threads/nope",
            None,
        ),
    }
    with ThreadPoolExecutor(len(denied)) as pool:  # each refusal takes Dapr's ~4 s of retries
        replies = pool.map(lambda c: c[0].invoke(*c[1:], timeout=30), denied.values())
        answers = dict(zip(denied, replies, strict=True))
    for what, resp in answers.items():
        assert refused(resp), (what, resp.status_code, resp.text)
    assert memory.invoke(names.AGENT_RUNNER, "GET", "internal/runs/no-such-run").status_code == 404
    tools = runner.invoke(names.TOOL_MCP, "POST", "mcp", {})
    assert tools.status_code != 403 and DENIED not in tools.text, tools.text


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
