"""Infrastructure settings, credentials, server configs and error messages (no servers)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agentia import names
from agentia_tools.runtime import infra, infra_checks, infra_servers
from agentia_tools.runtime.secrets_file import write_secrets

SECRET_KEYS = (
    names.SECRET_POSTGRES_URL,
    names.SECRET_POSTGRES_DSN,
    names.SECRET_RABBITMQ_URL,
    names.SECRET_REDIS_HOST,
    names.SECRET_REDIS_PASSWORD,
)


def test_credentials_are_generated_once_and_reused(tmp_path: Path) -> None:
    settings = infra.InfraSettings()
    first = infra.load_or_create_credentials(tmp_path, settings)
    mtime = (tmp_path / "secrets.json").stat().st_mtime_ns
    second = infra.load_or_create_credentials(tmp_path, settings)
    assert first == second
    assert (tmp_path / "secrets.json").stat().st_mtime_ns == mtime  # not rewritten
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert all(isinstance(stored[k], str) and stored[k] for k in SECRET_KEYS)
    assert stored[names.SECRET_RABBITMQ_URL] == first.rabbitmq_url
    assert first.postgres_url.startswith("postgresql://agentia:")
    assert first.postgres_url.endswith("@127.0.0.1:5432/agentia")
    assert first.rabbitmq_url.endswith("@127.0.0.1:5672/")
    assert first.redis_host == stored[names.SECRET_REDIS_HOST] == "127.0.0.1:6379"
    assert stored[names.SECRET_POSTGRES_DSN] == (
        f"host=127.0.0.1 port=5432 user=agentia password={first.postgres_password} "
        "dbname=agentia sslmode=disable"
    )
    assert len({first.postgres_password, first.rabbitmq_password, first.redis_password}) == 3
    assert oct((tmp_path / "secrets.json").stat().st_mode & 0o777) == "0o600"
    assert first.redis_password not in repr(first) and "agentia:" not in repr(first)


def test_other_keys_in_the_secrets_file_are_kept(tmp_path: Path) -> None:
    write_secrets(tmp_path, {names.SECRET_DAPR_API_TOKEN: "tok", "openai-api-key": "sk-1"})
    infra.load_or_create_credentials(tmp_path, infra.InfraSettings(redis_port=6390))
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert stored[names.SECRET_DAPR_API_TOKEN] == "tok" and stored["openai-api-key"] == "sk-1"
    assert stored[names.SECRET_REDIS_HOST] == "127.0.0.1:6390"


def test_external_urls_override_and_are_never_installed(tmp_path: Path) -> None:
    settings = infra.InfraSettings(
        postgres_url="postgresql://me:p%20w'x@db.internal:6543/mine?sslmode=require",
        redis_url="redis://:r%40pw@cache.internal:6380/0",
        rabbitmq_url="amqp://bunny:carrot@mq.internal:5671/prod",
    )
    creds = infra.load_or_create_credentials(tmp_path, settings)
    assert creds.postgres_url == settings.postgres_url
    assert creds.postgres_dsn == (
        "host=db.internal port=6543 user=me password='p w\\'x' dbname=mine sslmode=require"
    )
    assert creds.redis_host == "cache.internal:6380" and creds.redis_password == "r@pw"
    assert creds.rabbitmq_url == settings.rabbitmq_url and creds.rabbitmq_password == "carrot"
    assert infra.missing_packages(settings) == []
    assert all(settings.external(n) for n in ("postgres", "redis", "rabbitmq"))
    # a local password is still generated (and kept) for a later switch back to local
    again = infra.load_or_create_credentials(tmp_path, infra.InfraSettings())
    assert again.postgres_url.startswith("postgresql://agentia:")


def test_external_servers_are_not_prepared(tmp_path: Path) -> None:
    settings = infra.InfraSettings(
        postgres_url="postgresql://a:b@h:1/d", redis_url="redis://:p@h:2", rabbitmq_url="amqp://h"
    )
    said: list[str] = []
    creds = infra.load_or_create_credentials(tmp_path, settings)
    assert infra.prepare(tmp_path, settings, creds, said.append) == []
    assert len(said) == 3 and all("AGENTIA_" in m for m in said)


def test_status_before_up_does_not_create_secrets(tmp_path: Path) -> None:
    with pytest.raises(infra.InfraError, match="agentia up"):
        infra.load_or_create_credentials(tmp_path, infra.InfraSettings(), create=False)
    assert not (tmp_path / "secrets.json").exists()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTIA_POSTGRES_PORT", "15432")
    monkeypatch.setenv("AGENTIA_REDIS_URL", "redis://:pw@127.0.0.1:7000")
    s = infra.InfraSettings.from_env()
    assert (s.postgres_host, s.postgres_port, s.redis_port, s.rabbitmq_port) == (
        "127.0.0.1",
        15432,
        6379,
        5672,
    )
    assert s.external("redis") and not s.external("postgres")
    monkeypatch.setenv("AGENTIA_REDIS_PORT", "sixty")
    with pytest.raises(infra.InfraError, match="AGENTIA_REDIS_PORT"):
        infra.InfraSettings.from_env()
    monkeypatch.delenv("AGENTIA_REDIS_PORT")
    monkeypatch.setenv("AGENTIA_RABBITMQ_URL", "http://127.0.0.1:5672")
    with pytest.raises(infra.InfraError, match="AGENTIA_RABBITMQ_URL must be a amqp://"):
        infra.InfraSettings.from_env()


def test_redis_conf_listens_on_loopback_with_a_password(tmp_path: Path) -> None:
    conf = infra_servers.render_redis_conf(tmp_path / "data", 6390, 's3"cret')
    lines = conf.splitlines()
    assert "bind 127.0.0.1" in lines and "port 6390" in lines
    assert 'requirepass "s3\\"cret"' in lines
    assert "appendonly yes" in lines and "daemonize no" in lines
    assert f'dir "{tmp_path / "data"}"' in lines


def test_rabbitmq_conf_env_and_definitions(tmp_path: Path) -> None:
    run = tmp_path / "run" / "rabbitmq"
    conf = infra_servers.render_rabbitmq_conf(5673, "p4ss", "127.0.0.1", run).splitlines()
    assert "listeners.tcp.default = 127.0.0.1:5673" in conf
    assert "loopback_users = none" in conf
    assert "default_user = agentia" in conf and "default_pass = p4ss" in conf
    assert f"load_definitions = {run / 'definitions.json'}" in conf
    assert not any(line.startswith("prometheus.") for line in conf)  # unknown without plugin
    port = infra_servers.rabbitmq_metrics_port(5673)
    with_metrics = infra_servers.render_rabbitmq_conf(5673, "p", "127.0.0.1", run, port)
    assert "prometheus.tcp.port = 15693" in with_metrics.splitlines()
    assert "prometheus.tcp.ip = 127.0.0.1" in with_metrics.splitlines()  # loopback only
    assert infra_servers.rabbitmq_metrics_port(5672) == 15692
    assert infra_servers.rabbitmq_metrics_port(60000) == 49980
    env = infra_servers.rabbitmq_env(tmp_path, 5673)
    assert env["RABBITMQ_NODENAME"] == "agentia-5673@localhost"
    assert infra_servers.rabbitmq_env(tmp_path, 5672)["RABBITMQ_NODENAME"] == "agentia@localhost"
    assert env["RABBITMQ_NODE_PORT"] == "5673" and env["RABBITMQ_DIST_PORT"] == "25673"
    assert env["HOME"].startswith(str(tmp_path))
    for key in ("MNESIA_BASE", "LOG_BASE", "CONFIG_FILE", "ENABLED_PLUGINS_FILE", "CONF_ENV_FILE"):
        assert env[f"RABBITMQ_{key}"].startswith(str(tmp_path))
    assert "inet_dist_use_interface {127,0,0,1}" in env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    assert env["RABBITMQ_ALLOW_INPUT"] == "true"  # the script execs the VM: one pid to stop

    defs = json.loads(infra_servers.render_rabbitmq_definitions("p4ss"))
    (user,) = defs["users"]
    raw = base64.b64decode(user["password_hash"])
    assert raw[4:] == hashlib.sha256(raw[:4] + b"p4ss").digest()
    assert defs["permissions"][0] == {
        "user": "agentia",
        "vhost": "/",
        "configure": ".*",
        "write": ".*",
        "read": ".*",
    }


def test_postgres_socket_dir_fits_the_socket_path_limit(tmp_path: Path) -> None:
    assert infra_servers.postgres_socket_dir(tmp_path, 5432) == tmp_path / "run" / "postgres"
    deep = tmp_path / ("x" * 120)
    short = infra_servers.postgres_socket_dir(deep, 5432)
    assert len(str(short / ".s.PGSQL.5432")) <= infra_servers.SOCKET_PATH_MAX


def test_specs_run_in_the_foreground_in_the_infra_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(infra_servers, "run_as", lambda _name: None)
    redis_spec = infra_servers.redis_spec(tmp_path, "127.0.0.1", 6390, "pw")
    mq_spec = infra_servers.rabbitmq_spec(tmp_path, "127.0.0.1", 5673, "pw")
    assert (redis_spec.name, redis_spec.group) == ("redis", "infra")
    assert (mq_spec.name, mq_spec.group) == ("rabbitmq", "infra")
    assert redis_spec.command[-1] == str(tmp_path / "run" / "redis" / "redis.conf")
    assert mq_spec.command[0].endswith("/rabbitmq-server")
    for f in [Path(redis_spec.command[-1]), tmp_path / "run" / "rabbitmq" / "rabbitmq.conf"]:
        assert oct(f.stat().st_mode & 0o777) == "0o600"


def test_without_root_the_error_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infra, "missing_packages", lambda _s: ["redis-server", "rabbitmq-server"])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(infra.InfraError) as err:
        infra.ensure_packages(infra.InfraSettings(), lambda _m: None)
    msg = str(err.value)
    assert "sudo apt-get install -y -q --no-install-recommends redis-server rabbitmq-server" in msg
    assert "deploy/compose/compose.yaml" in msg


def test_install_refreshes_lists_only_when_they_are_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    policy_seen: list[bool] = []
    policy = tmp_path / "policy-rc.d"
    results = iter([(100, "E: Unable to locate package rabbitmq-server"), (0, ""), (0, "")])

    def fake_run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        policy_seen.append(policy.exists())
        rc, err = next(results) if cmd[:2] == ["apt-get", "install"] else (0, "")
        return subprocess.CompletedProcess(cmd, rc, "", err)

    monkeypatch.setattr(infra, "POLICY_RC_D", policy)
    monkeypatch.setattr(infra, "missing_packages", lambda _s: ["rabbitmq-server"])
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(infra_servers, "answering", lambda _h, _p: False)
    infra.ensure_packages(infra.InfraSettings(), lambda _m: None)
    apt = [c[:2] for c in calls if c[0] == "apt-get"]
    assert apt == [["apt-get", "install"], ["apt-get", "update"], ["apt-get", "install"]]
    assert policy_seen[0] and not policy.exists()  # services may not start during install

    calls.clear()
    results = iter([(100, "E: Sub-process /usr/bin/dpkg returned an error code (1)")])
    with pytest.raises(infra.InfraError, match="dpkg returned an error"):
        infra.ensure_packages(infra.InfraSettings(), lambda _m: None)
    assert [c[:2] for c in calls if c[0] == "apt-get"] == [["apt-get", "install"]]


def test_failure_reasons_are_short_and_never_show_a_password() -> None:
    refused = psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        "Connection refused\n\tIs the server running on that host?"
    )
    assert infra_checks.reason(refused, "127.0.0.1", 5432, ["pw"]) == (
        "connection refused on 127.0.0.1:5432"
    )
    auth = psycopg.OperationalError(
        'connection to server at "127.0.0.1", port 5432 failed: FATAL:  password '
        'authentication failed for user "agentia"'
    )
    why = infra_checks.reason(auth, "127.0.0.1", 5432, ["pw"])
    assert why == '127.0.0.1:5432 answers, but password authentication failed for user "agentia"'
    leaky = RuntimeError("could not log in with s3cr%2Ft or s3cr/t")
    assert "s3cr" not in infra_checks.reason(leaky, "h", 1, ["s3cr/t"])
    assert infra_checks.auth_problem("ACCESS_REFUSED - Login was refused")


def test_wait_ready_names_what_is_down_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "rabbitmq.log").write_text("booting\nerror: eaddrinuse 5672\n")
    down = infra_checks.Health("rabbitmq", False, "connection refused on 127.0.0.1:5672")
    monkeypatch.setattr(infra, "check", lambda _s, _c: [down])
    creds = infra.Credentials("postgresql://a:b@h/d", "amqp://a:b@h/", "h:1", "c")
    with pytest.raises(infra.InfraError) as err:
        infra.wait_ready(infra.InfraSettings(), creds, 0, lambda _m: None, home=tmp_path)
    msg = str(err.value)
    assert "rabbitmq: connection refused on 127.0.0.1:5672" in msg
    assert str(tmp_path / "logs" / "rabbitmq.log") in msg and "eaddrinuse" in msg
