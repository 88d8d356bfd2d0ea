"""The gateway's domain errors become HTTP answers in one handler: status, reason, headers."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agentia_gateway.errors import (
    GatewayError,
    Invalid,
    NotFound,
    OverLimit,
    Refused,
    ThreadBusy,
    Unavailable,
    install,
)


@pytest.mark.parametrize(
    ("error", "status", "headers"),
    [
        (NotFound("no run 'r1'"), 404, {}),
        (Invalid("input: not a message"), 422, {}),
        (ThreadBusy("thread 't' is busy with run r0"), 409, {}),
        (OverLimit("over budget", {"Retry-After": "30"}), 429, {"retry-after": "30"}),
        (Unavailable("memory unavailable (502): down", retry_after_s=5), 503, {"retry-after": "5"}),
        (Refused(413, "too large"), 413, {}),
    ],
)
def test_each_error_is_answered_with_its_status_reason_and_headers(
    error: GatewayError, status: int, headers: dict[str, str]
) -> None:
    app = FastAPI()
    install(app)

    @app.get("/x")
    async def fail() -> None:
        raise error

    resp = TestClient(app).get("/x")
    assert resp.status_code == status
    assert resp.json() == {"detail": error.reason}
    for name, value in headers.items():
        assert resp.headers[name] == value


def test_an_outage_answered_to_a_client_is_logged_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()
    install(app)

    @app.get("/gone")
    async def gone() -> None:
        raise Unavailable("memory unavailable (500): failed to invoke")

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("no run 'r1'")

    with caplog.at_level("WARNING", logger="agentia.gateway"):
        TestClient(app).get("/missing")
        assert not caplog.records, "a client's 4xx is not the operator's news"
        TestClient(app).get("/gone")
    (record,) = caplog.records
    assert record.reason == "memory unavailable (500): failed to invoke"  # type: ignore[attr-defined]
    assert record.path == "/gone"  # type: ignore[attr-defined]
