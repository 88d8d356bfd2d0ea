"""Infrastructure settings and credentials: generated once, reused, never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentia import names
from agentia.runtime import infra, infra_servers


def test_credentials_are_generated_once_and_reused(tmp_path: Path) -> None:
    settings = infra.InfraSettings()
    first = infra.load_or_create_credentials(tmp_path, settings)
    second = infra.load_or_create_credentials(tmp_path, settings)
    assert first == second
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert stored[names.SECRET_RABBITMQ_URL] == first.rabbitmq_url
    assert "password=" in stored[names.SECRET_POSTGRES_DSN]
    assert oct((tmp_path / "secrets.json").stat().st_mode & 0o777) == "0o600"
    assert "password" not in repr(first) and first.redis_password not in repr(first)


def test_external_urls_override_and_are_never_started(tmp_path: Path) -> None:
    settings = infra.InfraSettings(
        postgres_url="postgresql://me:pw@db.internal:6543/mine",
        redis_url="redis://:rpw@cache.internal:6380/0",
    )
    creds = infra.load_or_create_credentials(tmp_path, settings)
    assert creds.postgres_url == "postgresql://me:pw@db.internal:6543/mine"
    assert "host=db.internal port=6543 user=me password=pw dbname=mine" in creds.postgres_dsn
    assert creds.redis_host == "cache.internal:6380" and creds.redis_password == "rpw"
    assert "postgresql" not in infra.missing_packages(settings)
    assert settings.external("postgres") and not settings.external("rabbitmq")


def test_status_before_up_does_not_create_secrets(tmp_path: Path) -> None:
    with pytest.raises(infra.InfraError, match="agentia up"):
        infra.load_or_create_credentials(tmp_path, infra.InfraSettings(), create=False)
    assert not (tmp_path / "secrets.json").exists()


def test_bad_port_in_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTIA_REDIS_PORT", "sixty")
    with pytest.raises(infra.InfraError, match="AGENTIA_REDIS_PORT"):
        infra.InfraSettings.from_env()


def test_server_configs_listen_on_loopback_with_passwords(tmp_path: Path) -> None:
    redis_conf = infra_servers.render_redis_conf(tmp_path, 6390, "s3cret")
    assert "bind 127.0.0.1" in redis_conf and "requirepass s3cret" in redis_conf
    assert "appendonly yes" in redis_conf
    mq = infra_servers.render_rabbitmq_conf(5673, "p4ss")
    assert "listeners.tcp.default = 127.0.0.1:5673" in mq and "default_pass = p4ss" in mq
    env = infra_servers.rabbitmq_env(tmp_path, 5673)
    assert env["RABBITMQ_NODE_PORT"] == "5673" and env["HOME"].startswith(str(tmp_path))


def test_without_root_the_error_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infra, "missing_packages", lambda _s: ["redis-server"])
    monkeypatch.setattr(infra.os, "geteuid", lambda: 1000)
    with pytest.raises(infra.InfraError) as err:
        infra.ensure_packages(infra.InfraSettings(), lambda _m: None)
    assert "sudo apt-get install" in str(err.value) and "redis-server" in str(err.value)
    assert "compose.yaml" in str(err.value)
