"""Which apps may call the tool server. Dapr's access-control policy cannot tell callers
apart without mTLS (self-hosted here: the caller's identity comes from its certificate), so
the server also checks the caller app ids the sidecars forward, behind the app token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

# The calling sidecar adds its own app id AFTER any value the caller put in the request
# (checked in the integration tests), so every value must be allowed, not just the first.
CALLER_HEADER = "dapr-caller-app-id"


def caller_allowed(callers: list[str], allowed: list[str]) -> bool:
    """True when no allow-list is set, or every caller id the request carries is on it."""
    return not allowed or (bool(callers) and all(c in allowed for c in callers))


def restrict_callers(app: FastAPI, allowed: list[str], prefix: str = "/mcp") -> None:
    """Answer 403 on ``prefix`` to apps not in ``allowed`` (no-op when it is empty)."""
    if not allowed:
        return

    @app.middleware("http")
    async def only_allowed_callers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        callers = request.headers.getlist(CALLER_HEADER)
        if request.url.path.startswith(prefix) and not caller_allowed(callers, allowed):
            caller = ",".join(callers)
            return JSONResponse(
                {"detail": f"app '{caller}' may not call this tool server"}, status_code=403
            )
        return await call_next(request)
