"""Health probes for everything `agentia status` shows: answers over the real protocols."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from agentia import names
from agentia_tools.runtime import mesh


@dataclass(frozen=True)
class Probe:
    """The result of one health probe."""

    name: str
    kind: str
    ok: bool
    detail: str
    url: str = ""


def http_probe(name: str, kind: str, url: str, expect: tuple[int, ...] = (200, 204)) -> Probe:
    try:
        resp = httpx.get(url, timeout=2.0)
    except httpx.HTTPError as exc:
        return Probe(name, kind, False, _why(exc), url)
    if resp.status_code in expect:
        return Probe(name, kind, True, "healthy", url)
    detail = f"answered {resp.status_code}"
    try:
        body = resp.json()
        if isinstance(body, dict) and body.get("sidecar"):
            detail += f" (sidecar: {body['sidecar']})"
    except ValueError:
        pass
    return Probe(name, kind, False, detail, url)


def _why(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused (not listening)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return type(exc).__name__


def sentry_probe() -> Probe:
    return http_probe(
        "sentry", "control-plane", f"http://127.0.0.1:{names.SENTRY_HEALTHZ_PORT}/healthz"
    )


def control_plane_probes() -> list[Probe]:
    return [
        sentry_probe(),
        http_probe(
            "placement", "control-plane", f"http://127.0.0.1:{names.PLACEMENT_HEALTHZ_PORT}/healthz"
        ),
        http_probe(
            "dapr-scheduler",
            "control-plane",
            f"http://127.0.0.1:{names.SCHEDULER_HEALTHZ_PORT}/healthz",
        ),
        http_probe(
            names.TRACESTORE,
            "control-plane",
            f"http://127.0.0.1:{names.TRACESTORE_PORT}/healthz",
        ),
    ]


def sidecar_probe(app_id: str) -> Probe:
    port = names.PORTS[app_id].dapr_http
    return http_probe(mesh.sidecar_name(app_id), "sidecar", f"http://127.0.0.1:{port}/v1.0/healthz")


def app_probe(app_id: str) -> Probe:
    port = names.PORTS[app_id].app
    return http_probe(app_id, "app", f"http://127.0.0.1:{port}/healthz")


def mesh_probes() -> list[Probe]:
    probes = control_plane_probes()
    for app_id in names.APP_IDS:
        probes.append(app_probe(app_id))
        probes.append(sidecar_probe(app_id))
    return probes
