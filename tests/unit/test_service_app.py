"""The shared service app: settings fail fast, internal routes need the app token."""

from __future__ import annotations

import importlib
import pkgutil
import socket

import pydantic
import pytest
from fastapi.testclient import TestClient

from agentia import names
from agentia.service import create_service_app
from agentia.settings import ServiceSettings

ENV = {
    "APP_ID": "memory",
    "APP_PORT": "8002",
    "DAPR_HTTP_PORT": "3502",
    "DAPR_GRPC_PORT": "31103",
    "DAPR_API_TOKEN": "dapr-token",
    "APP_API_TOKEN": "app-token",
}


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    # Nothing listens there, whatever else runs on this machine.
    monkeypatch.setenv("DAPR_HTTP_PORT", str(_unused_port()))
    return ServiceSettings()  # type: ignore[call-arg]


def test_missing_secret_stops_start_up_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        if key != "APP_API_TOKEN":
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("APP_API_TOKEN", raising=False)
    with pytest.raises(pydantic.ValidationError, match="APP_API_TOKEN"):
        ServiceSettings()  # type: ignore[call-arg]


def test_bad_port_refused(monkeypatch: pytest.MonkeyPatch, settings: ServiceSettings) -> None:
    monkeypatch.setenv("APP_PORT", "99999")
    with pytest.raises(pydantic.ValidationError, match="APP_PORT"):
        ServiceSettings()  # type: ignore[call-arg]


def test_secrets_do_not_show_in_repr(settings: ServiceSettings) -> None:
    assert "app-token" not in repr(settings) and "dapr-token" not in repr(settings)


def test_internal_routes_need_the_app_token(settings: ServiceSettings) -> None:
    app = create_service_app(settings, title="t")
    with TestClient(app) as client:
        assert client.get("/livez").status_code == 200
        refused = client.get("/internal/info")
        assert refused.status_code == 401
        assert "app token" in refused.json()["detail"]
        wrong = client.get("/internal/info", headers={"dapr-api-token": "nope"})
        assert wrong.status_code == 401
        ok = client.get("/internal/info", headers={"dapr-api-token": "app-token"})
        assert ok.status_code == 200 and ok.json()["app_id"] == "memory"


def test_healthz_reports_an_unreachable_sidecar(settings: ServiceSettings) -> None:
    app = create_service_app(settings, title="t")
    with TestClient(app) as client:
        resp = client.get("/healthz")
    # Nothing listens on the sidecar port in a unit test: degraded, with the reason.
    assert resp.status_code == 503
    assert resp.json()["sidecar"].startswith("sidecar unreachable")


def test_a_failing_sidecar_call_is_a_503_with_the_reason(settings: ServiceSettings) -> None:
    from fastapi import APIRouter

    from agentia.dapr import DaprError

    router = APIRouter()

    @router.get("/internal/boom")
    async def boom() -> None:
        raise DaprError(500, "state store unreachable")

    app = create_service_app(settings, title="t", routers=[router])
    with TestClient(app) as client:
        resp = client.get("/internal/boom", headers={"dapr-api-token": "app-token"})
    assert resp.status_code == 503
    assert "state store unreachable" in resp.json()["detail"]
    assert resp.headers["retry-after"] == "1"


def test_every_module_of_every_service_imports() -> None:
    """mypy sees imports between a service's own modules as untyped (services/ is not on its
    path), so a name dropped from one module would only fail when the service starts."""
    for package in (*names.SERVICE_MODULES.values(), "agentia_workflows"):
        root = importlib.import_module(package)
        for info in pkgutil.iter_modules(root.__path__, f"{package}."):
            importlib.import_module(info.name)
