"""Calls from the gateway to the other services, through Dapr service invocation only.

Their 4xx answers reach the client with the reason they gave; anything else (the service or
its sidecar down, a 5xx) becomes a 503 with Retry-After, never a 500.
"""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic

from agentia.contracts import InvokeError
from agentia.dapr import DaprClient, fields_reason
from agentia_gateway.errors import GatewayError, Invalid, Refused, Unavailable

PASS_THROUGH = {400, 404, 409, 413, 422}
Request = TypeVar("Request", bound=pydantic.BaseModel)


def refusal(exc: InvokeError) -> GatewayError:
    """What the gateway answers for another service's error answer."""
    if exc.status in PASS_THROUGH:
        return Refused(exc.status, exc.reason)
    return Unavailable(f"{exc.app_id} unavailable ({exc.status}): {exc.reason}")


class Upstream:
    """The gateway's :class:`agentia.contracts.Call`, for the typed clients: the answer's
    JSON (None when empty); a refusal or an outage as a GatewayError."""

    def __init__(self, client: DaprClient) -> None:
        self.client = client

    async def __call__(
        self,
        app_id: str,
        method: str,
        *,
        http_method: str = "POST",
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        try:
            return await self.client.call(
                app_id, method, http_method=http_method, body=body, timeout=timeout
            )
        except InvokeError as exc:
            raise refusal(exc) from None


def request(model: type[Request], **fields: Any) -> Request:
    """A request to another service made from what a client sent: a field the service would
    refuse is refused here with the same 422 and reason, before any call."""
    try:
        return model(**fields)
    except pydantic.ValidationError as exc:
        # Worded as the service's own 422 would reach the gateway (answer_reason).
        raise Invalid(fields_reason(exc.errors())) from None
