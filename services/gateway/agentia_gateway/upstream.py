"""Calls from the gateway to the other services, through Dapr service invocation only.

Their 4xx answers reach the client with the reason they gave; anything else (the service or
its sidecar down, a 5xx) becomes a 503 with Retry-After, never a 500.
"""

from __future__ import annotations

from typing import Any

from agentia.dapr import DaprClient
from agentia_gateway.errors import Refused, Unavailable

PASS_THROUGH = {400, 404, 409, 413, 422}


def _detail(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        detail = body.get("detail", body.get("message", fallback))
        if isinstance(detail, list):  # FastAPI's validation errors: name the fields
            parts = [
                f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}"
                for d in detail
                if isinstance(d, dict)
            ]
            return "; ".join(parts) or fallback
        return str(detail)
    return fallback


async def call(
    client: DaprClient,
    app_id: str,
    method: str,
    *,
    http_method: str = "POST",
    body: Any = None,
    timeout: float | None = None,
) -> Any:
    resp = await client.invoke(
        app_id, method, http_method=http_method, json_body=body, timeout=timeout
    )
    if resp.status_code == 204 or (resp.status_code < 300 and not resp.content):
        return None
    try:
        data = resp.json()
    except ValueError:
        data = None
    if resp.status_code < 300:
        return data
    reason = _detail(data, resp.text[:300] or resp.reason_phrase)
    if resp.status_code in PASS_THROUGH:
        raise Refused(resp.status_code, reason)
    raise Unavailable(f"{app_id} unavailable ({resp.status_code}): {reason}")
