"""The public API's door: who is calling (API key or JWT), whether they may, and their
rate limit, before any route runs (budgets are the routes' own: ``deps.Admission``). A
plain ASGI middleware (Starlette's ``BaseHTTPMiddleware`` costs a task group and a memory
stream per request)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agentia_gateway import metrics
from agentia_gateway.security import Denied, authorize


class Authenticate:
    """Refuses with 401/403/429 and a reason; sets ``request.state.principal``."""

    def __init__(self, app: ASGIApp, owner: FastAPI, prefixes: tuple[str, ...]) -> None:
        self.app, self.owner, self.prefixes = app, owner, prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] == "OPTIONS"
            or not scope["path"].startswith(self.prefixes)
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)  # headers and state only: the body is left to the route
        state, method, path = self.owner.state, scope["method"], scope["path"]
        try:
            principal = state.auth.authenticate({k.lower(): v for k, v in request.headers.items()})
            authorize(principal, method, path)
            await state.limiter.hit(principal)
        except Denied as denied:
            metrics.REFUSED.labels(str(denied.status)).inc()
            headers = dict(denied.headers)
            if denied.status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="agentia"'
            refusal = JSONResponse({"detail": denied.reason}, denied.status, headers=headers)
            await refusal(scope, receive, send)
            return
        request.state.principal = principal
        await self.app(scope, receive, send)
