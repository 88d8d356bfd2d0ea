"""http_fetch: GET a page from a host on the allow-list (none by default). No redirects to
other hosts, a size cap, and the call's timeout. The network is reached directly, not through
Dapr: these are outside hosts."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from agentia_toolmcp.server import ToolServer

FETCH = ToolAnnotations(
    title="Fetch a web page", readOnlyHint=True, idempotentHint=True, openWorldHint=True
)
MAX_REDIRECTS = 5
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml", "+json", "+xml")


def host_allowed(host: str, allowed: list[str]) -> bool:
    """Exact host names, or ``*.example.com`` for its subdomains (not example.com itself)."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
        if host == entry:
            return True
    return False


def check_url(url: str, allowed: list[str]) -> httpx.URL:
    """The parsed URL, or a ToolError naming the field when it may not be fetched."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ToolError(f"url: not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise ToolError(f"url: only http and https URLs may be fetched, not '{parsed.scheme}'")
    if not parsed.host:
        raise ToolError("url: the URL has no host")
    if not host_allowed(parsed.host, allowed):
        raise ToolError(f"url: host '{parsed.host}' is not on the allow-list")
    return parsed


def redirect_target(current: httpx.URL, location: str, allowed: list[str]) -> httpx.URL:
    """Where a redirect leads, refused when it leaves the host (or the allow-list)."""
    target = current.join(location)
    if target.host != current.host:
        raise ToolError(f"url: redirect to another host ('{target.host}') refused")
    return check_url(str(target), allowed)


def is_text(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return not kind or any(
        t in kind if t.startswith("+") else kind.startswith(t) for t in TEXT_TYPES
    )


def register(
    server: ToolServer,
    allowed_hosts: list[str],
    max_bytes: int,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """Add http_fetch for ``allowed_hosts``, reading at most ``max_bytes`` of a body."""

    async def http_fetch(
        url: Annotated[str, Field(min_length=1, max_length=4096)],
        max_chars: Annotated[int | None, Field(ge=1)] = None,
    ) -> dict[str, Any]:
        """GET a URL on an allowed host and return its status, content type and text
        (truncated to the size cap; binary bodies are not returned)."""
        current = check_url(url, allowed_hosts)
        timeout = server.timeout_for("http_fetch")
        # trust_env=False: no proxy or netrc from the environment decides where we connect.
        async with httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False, transport=transport
        ) as http:
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    async with http.stream("GET", current) as resp:
                        if resp.is_redirect and "location" in resp.headers:
                            current = redirect_target(
                                current, resp.headers["location"], allowed_hosts
                            )
                            continue
                        body = bytearray()
                        truncated = False
                        async for chunk in resp.aiter_bytes():
                            body += chunk
                            if len(body) > max_bytes:
                                del body[max_bytes:]
                                truncated = True
                                break
                        content_type = resp.headers.get("content-type", "")
                        text: str | None = None
                        if is_text(content_type):
                            text = bytes(body).decode(resp.encoding or "utf-8", errors="replace")
                            if max_chars is not None and len(text) > max_chars:
                                text, truncated = text[:max_chars], True
                        return {
                            "url": str(current),
                            "status": resp.status_code,
                            "content_type": content_type,
                            "text": text,
                            "bytes": len(body),
                            "truncated": truncated,
                        }
                except httpx.HTTPError as exc:
                    raise ToolError(f"url: fetching failed: {type(exc).__name__}: {exc}") from None
        raise ToolError(f"url: more than {MAX_REDIRECTS} redirects")

    server.add_tool(http_fetch, annotations=FETCH)
