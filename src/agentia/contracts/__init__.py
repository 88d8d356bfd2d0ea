"""The services' internal APIs, one module per service that both it and its callers import
(services never import each other): each module holds the paths, the request and answer
models of its endpoints, and a typed client over a :class:`Call`.

A typed client never speaks HTTP itself: the calling service hands it a :class:`Call` (usually
``DaprClient.call``, wrapped by the service to turn an :class:`InvokeError` into its own
errors), so each service keeps its own error policy while the shapes are shared."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Protocol

from pydantic import PlainSerializer

# A run's or thread's id, as clients of the Agent Protocol send them and every service takes.
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"

# A time its service writes with ``datetime.isoformat()`` ("+00:00", not pydantic's "Z"):
# read as a datetime, written back in JSON exactly as it came.
IsoTime = Annotated[
    datetime, PlainSerializer(lambda moment: moment.isoformat(), return_type=str, when_used="json")
]


class InvokeError(RuntimeError):
    """The called service answered with an error (``status`` is its HTTP status, ``reason``
    what it said: FastAPI's validation errors name the fields)."""

    def __init__(self, app_id: str, status: int, reason: str) -> None:
        super().__init__(f"{app_id} answered {status}: {reason}")
        self.app_id = app_id
        self.status = status
        self.reason = reason


class Call(Protocol):
    """One service invocation: the answer's JSON (None for an empty answer) on a 2xx; raises
    :class:`InvokeError` on a 4xx or 5xx, and the transport's error when nothing answered."""

    async def __call__(
        self,
        app_id: str,
        method: str,
        *,
        http_method: str = "POST",
        body: Any = None,
        timeout: float | None = None,
    ) -> Any: ...
