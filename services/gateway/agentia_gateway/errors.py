"""The gateway's domain errors. Code below the routes raises these, never an HTTP exception;
one handler (``install``, wired in ``app.py``) answers each with its status and reason, in the
same ``{"detail": …}`` body FastAPI gives its own errors."""

from __future__ import annotations

import logging
from typing import ClassVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

log = logging.getLogger("agentia.gateway")


class GatewayError(Exception):
    """A request the gateway cannot serve, and why (``reason`` reaches the client)."""

    status: ClassVar[int] = 400

    def __init__(self, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason, self.headers = reason, headers

    @property
    def status_code(self) -> int:
        return self.status


class NotAuthenticated(GatewayError):
    """The endpoint answers only for an API key, and the request carried none."""

    status = 401


class NotFound(GatewayError):
    """No such run, thread or agent."""

    status = 404


class Invalid(GatewayError):
    """Input that breaks a rule (the reason names the field)."""

    status = 422


class ThreadBusy(GatewayError):
    """The thread runs another run and the strategy says not to wait."""

    status = 409


class OverLimit(GatewayError):
    """A budget, model limit or rate limit says no (with ``Retry-After`` when known)."""

    status = 429


class Unavailable(GatewayError):
    """Something the request needs is away for now: retry (``Retry-After``)."""

    status = 503

    def __init__(self, reason: str, retry_after_s: int = 1) -> None:
        super().__init__(reason, {"Retry-After": str(retry_after_s)})


class Refused(GatewayError):
    """Another service refused the request with a 4xx: its status and reason, passed on."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self._status = status

    @property
    def status_code(self) -> int:
        return self._status


def install(app: FastAPI) -> None:
    """Answer every :class:`GatewayError` with its status, reason and headers."""

    @app.exception_handler(GatewayError)
    async def answer(request: Request, exc: GatewayError) -> JSONResponse:
        if exc.status_code >= 500:  # an outage behind the gateway: the operator's to see too
            log.warning(
                "answered unavailable",
                extra={"path": request.url.path, "status": exc.status_code, "reason": exc.reason},
            )
        return JSONResponse(
            {"detail": exc.reason}, status_code=exc.status_code, headers=exc.headers
        )
