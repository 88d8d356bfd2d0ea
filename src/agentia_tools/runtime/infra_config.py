"""Settings and credentials of the mesh's infrastructure (PostgreSQL, Redis, RabbitMQ).

Passwords are generated once into the mesh's secrets file (mode 0600), which Dapr's
local.file secret store reads, and reused; a server the user runs is named by a URL.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from agentia import names
from agentia_tools.runtime.secrets_file import read_secrets, secrets_path, write_secrets

SERVERS = ("postgres", "redis", "rabbitmq")
SCHEMES = {"postgres": ("postgresql", "postgres"), "redis": ("redis",), "rabbitmq": ("amqp",)}
PASSWORD_KEYS = {n: f"local-{n}-password" for n in SERVERS}


class InfraError(RuntimeError):
    """Infrastructure is missing or not answering; the message says what to do."""


@dataclass(frozen=True)
class InfraSettings:
    """Where the servers listen (loopback), and which ones the user runs themselves."""

    host: str = "127.0.0.1"
    postgres_port: int = 5432
    redis_port: int = 6379
    rabbitmq_port: int = 5672
    postgres_url: str | None = None
    redis_url: str | None = None
    rabbitmq_url: str | None = None

    @property
    def postgres_host(self) -> str:
        return self.host

    @classmethod
    def from_env(cls) -> InfraSettings:
        def port(var: str, default: int) -> int:
            raw = os.environ.get(var, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise InfraError(f"{var}={raw!r} is not a port number")
            return int(raw)

        def url(name: str) -> str | None:
            var = f"AGENTIA_{name.upper()}_URL"
            raw = os.environ.get(var, "").strip() or None
            if raw:
                try:
                    u = urlsplit(raw)
                    ok = u.scheme in SCHEMES[name] and bool(u.hostname) and (u.port or 1) > 0
                except ValueError:
                    ok = False
                if not ok:
                    want = " or ".join(f"{s}://" for s in SCHEMES[name])
                    raise InfraError(f"{var} must be a {want}user:password@host:port/ URL")
            return raw

        return cls(
            postgres_port=port("AGENTIA_POSTGRES_PORT", 5432),
            redis_port=port("AGENTIA_REDIS_PORT", 6379),
            rabbitmq_port=port("AGENTIA_RABBITMQ_PORT", 5672),
            postgres_url=url("postgres"),
            redis_url=url("redis"),
            rabbitmq_url=url("rabbitmq"),
        )

    def external(self, name: str) -> bool:
        return bool(
            {"postgres": self.postgres_url, "redis": self.redis_url, "rabbitmq": self.rabbitmq_url}[
                name
            ]
        )

    def port(self, name: str) -> int:
        return {
            "postgres": self.postgres_port,
            "redis": self.redis_port,
            "rabbitmq": self.rabbitmq_port,
        }[name]


@dataclass(frozen=True)
class Credentials:
    """How the mesh reaches each server. Holds passwords: never log it."""

    postgres_url: str
    rabbitmq_url: str
    redis_host: str  # host:port, as Dapr's redis components take it
    redis_password: str

    def __repr__(self) -> str:
        return "Credentials(<hidden>)"

    @property
    def postgres_password(self) -> str:
        return unquote(urlsplit(self.postgres_url).password or "")

    @property
    def rabbitmq_password(self) -> str:
        return unquote(urlsplit(self.rabbitmq_url).password or "")

    @property
    def postgres_dsn(self) -> str:
        """The key=value form Dapr's PostgreSQL components take."""
        u = urlsplit(self.postgres_url)
        mode = parse_qs(u.query).get("sslmode", ["disable"])[-1]
        parts = {
            "host": u.hostname or "127.0.0.1",
            "port": str(u.port or 5432),
            "user": unquote(u.username or ""),
            "password": self.postgres_password,
            "dbname": unquote(u.path.lstrip("/")) or "postgres",
            "sslmode": mode,
        }
        return " ".join(f"{k}={_dsn_value(v)}" for k, v in parts.items())

    def passwords(self) -> list[str]:
        return [
            p for p in (self.postgres_password, self.rabbitmq_password, self.redis_password) if p
        ]


def _dsn_value(value: str) -> str:
    if value and not any(c in value for c in " '\\\"\t\n"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def load_or_create_credentials(
    home: Path, settings: InfraSettings, *, create: bool = True
) -> Credentials:
    """Credentials from the secrets file, generating local passwords on first use.
    Other keys in the file (tokens, API keys) are kept."""
    values = read_secrets(home)
    if not all(values.get(k) for k in PASSWORD_KEYS.values()):
        if not create:
            raise InfraError(f"no credentials yet in {home}: run `agentia up` first")
        for key in PASSWORD_KEYS.values():
            values.setdefault(key, secrets.token_urlsafe(24))
    h = settings.host
    pw = {n: quote(values[k], safe="") for n, k in PASSWORD_KEYS.items()}
    pg = settings.postgres_url or (
        f"postgresql://agentia:{pw['postgres']}@{h}:{settings.postgres_port}/agentia"
    )
    mq = settings.rabbitmq_url or f"amqp://agentia:{pw['rabbitmq']}@{h}:{settings.rabbitmq_port}/"
    if settings.redis_url:
        r = urlsplit(settings.redis_url)
        redis_host, redis_pw = f"{r.hostname}:{r.port or 6379}", unquote(r.password or "")
    else:
        redis_host, redis_pw = f"{h}:{settings.redis_port}", values[PASSWORD_KEYS["redis"]]
    creds = Credentials(pg, mq, redis_host, redis_pw)
    values.update(
        {
            names.SECRET_POSTGRES_URL: creds.postgres_url,
            names.SECRET_POSTGRES_DSN: creds.postgres_dsn,
            names.SECRET_RABBITMQ_URL: creds.rabbitmq_url,
            names.SECRET_REDIS_HOST: creds.redis_host,
            names.SECRET_REDIS_PASSWORD: creds.redis_password,
        }
    )
    if values != read_secrets(home):
        write_secrets(home, values)
    secrets_path(home).chmod(0o600)
    return creds
