"""RabbitMQ, PostgreSQL and Redis for the mesh: install, prepare, check.

A server already answering at its address is reused and left alone; one the user runs
elsewhere is named by a URL (``AGENTIA_POSTGRES_URL``, ``AGENTIA_REDIS_URL``,
``AGENTIA_RABBITMQ_URL``). The rest are installed from Debian's packages (as root) and run
under the mesh's supervisor. Credentials are generated once into the mesh's secrets file,
which Dapr's local.file secret store reads; they are never printed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pika
import psycopg
import redis

from agentia import names
from agentia.runtime import infra_servers as servers
from agentia.runtime.programs import ProgramSpec
from agentia.runtime.secrets_file import read_secrets, write_secrets

Progress = Callable[[str], None]
PACKAGES = {"postgres": "postgresql", "redis": "redis-server", "rabbitmq": "rabbitmq-server"}
BINARIES = {
    "postgres": "/usr/lib/postgresql",
    "redis": "/usr/bin/redis-server",
    "rabbitmq": "/usr/lib/rabbitmq/bin/rabbitmq-server",
}


class InfraError(RuntimeError):
    """Infrastructure is missing or not answering; the message says what to do."""


@dataclass(frozen=True)
class InfraSettings:
    """Where the servers listen, and which ones the user runs themselves."""

    host: str = "127.0.0.1"
    postgres_port: int = 5432
    redis_port: int = 6379
    rabbitmq_port: int = 5672
    postgres_url: str | None = None
    redis_url: str | None = None
    rabbitmq_url: str | None = None

    @classmethod
    def from_env(cls) -> InfraSettings:
        def port(var: str, default: int) -> int:
            raw = os.environ.get(var)
            if raw is None:
                return default
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise InfraError(f"{var}={raw!r} is not a port number")
            return int(raw)

        return cls(
            postgres_port=port("AGENTIA_POSTGRES_PORT", 5432),
            redis_port=port("AGENTIA_REDIS_PORT", 6379),
            rabbitmq_port=port("AGENTIA_RABBITMQ_PORT", 5672),
            postgres_url=os.environ.get("AGENTIA_POSTGRES_URL") or None,
            redis_url=os.environ.get("AGENTIA_REDIS_URL") or None,
            rabbitmq_url=os.environ.get("AGENTIA_RABBITMQ_URL") or None,
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
    redis_host: str
    redis_password: str

    def __repr__(self) -> str:
        return "Credentials(<hidden>)"

    @property
    def postgres_dsn(self) -> str:
        """The key=value form Dapr's PostgreSQL components take."""
        u = urlsplit(self.postgres_url)
        return (
            f"host={u.hostname} port={u.port or 5432} user={u.username} "
            f"password={u.password} dbname={u.path.lstrip('/') or 'postgres'} sslmode=disable"
        )


def load_or_create_credentials(
    home: Path, settings: InfraSettings, *, create: bool = True
) -> Credentials:
    """Credentials from the secrets file, generating local passwords on first use."""
    values = read_secrets(home)
    pw_keys = ("local-postgres-password", "local-redis-password", "local-rabbitmq-password")
    if not all(values.get(k) for k in pw_keys):
        if not create:
            raise InfraError(f"no credentials yet in {home}: run `agentia up` first")
        for key in pw_keys:
            values.setdefault(key, secrets.token_urlsafe(24))
    h = settings.host
    pg = settings.postgres_url or (
        f"postgresql://agentia:{quote(values['local-postgres-password'])}@{h}:"
        f"{settings.postgres_port}/agentia"
    )
    mq = settings.rabbitmq_url or (
        f"amqp://agentia:{quote(values['local-rabbitmq-password'])}@{h}:{settings.rabbitmq_port}/"
    )
    if settings.redis_url:
        r = urlsplit(settings.redis_url)
        redis_host, redis_pw = f"{r.hostname}:{r.port or 6379}", r.password or ""
    else:
        redis_host, redis_pw = f"{h}:{settings.redis_port}", values["local-redis-password"]
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
    if create or values != read_secrets(home):
        write_secrets(home, values)
    return creds


def missing_packages(settings: InfraSettings) -> list[str]:
    return [
        pkg
        for name, pkg in PACKAGES.items()
        if not settings.external(name) and not Path(BINARIES[name]).exists()
    ]


def ensure_packages(settings: InfraSettings, progress: Progress) -> None:
    """Install the Debian packages of the servers we run, when missing."""
    missing = missing_packages(settings)
    if not missing:
        return
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        raise InfraError(
            f"missing {', '.join(missing)}; install them with: sudo {' '.join(cmd)}\n"
            "(or run them with Docker: deploy/compose/compose.yaml, and set AGENTIA_*_URL)"
        )
    progress(f"installing {', '.join(missing)} from Debian's packages")
    # Debian starts services on install; we run our own, so forbid that for this install.
    policy = Path("/usr/sbin/policy-rc.d")
    had_policy = policy.exists()
    if not had_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            progress("apt-get install failed; refreshing package lists and retrying")
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise InfraError(f"installing {' '.join(missing)} failed:\n{proc.stderr[-2000:]}")
    finally:
        if not had_policy:
            policy.unlink(missing_ok=True)
    servers.stop_epmd(lambda _m: None)  # a package's postinst may have started it


def answering(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket() as s:
        s.settimeout(timeout)
        return s.connect_ex((host, port)) == 0


def prepare(
    home: Path,
    settings: InfraSettings,
    creds: Credentials,
    progress: Progress,
    managed: set[str] | None = None,
) -> list[ProgramSpec]:
    """Specs for the servers the mesh runs itself: not external, not already answering
    (unless our own supervisor runs it: ``managed``)."""
    managed = managed or set()
    values = read_secrets(home)
    specs: list[ProgramSpec] = []
    for name in ("postgres", "redis", "rabbitmq"):
        if settings.external(name):
            progress(f"{name}: using the server you named (AGENTIA_{name.upper()}_URL)")
            continue
        port = settings.port(name)
        if name not in managed and answering(settings.host, port):
            progress(f"{name}: reusing the server already answering on {settings.host}:{port}")
            continue
        if name == "postgres":
            specs.append(
                servers.postgres_spec(home, port, values["local-postgres-password"], progress)
            )
        elif name == "redis":
            specs.append(servers.redis_spec(home, port, creds.redis_password))
        else:
            specs.append(servers.rabbitmq_spec(home, port, values["local-rabbitmq-password"]))
    return specs


def bootstrap_after_start(settings: InfraSettings, creds: Credentials, progress: Progress) -> None:
    """After the servers answer: the vector extension where the server has it."""
    try:
        with psycopg.connect(creds.postgres_url, connect_timeout=5, autocommit=True) as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
            if row:
                try:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                except psycopg.Error:
                    progress("postgres: pgvector is available but agentia may not create it")
    except psycopg.Error as exc:
        raise InfraError(f"postgres: {_pg_reason(exc)}") from None


@dataclass(frozen=True)
class Health:
    name: str
    ok: bool
    detail: str


def _pg_reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.replace(":" + (text.split(":")[2] if text.count(":") > 2 else ""), ":")[:200]


def check(settings: InfraSettings, creds: Credentials) -> list[Health]:
    """Real protocol checks (SQL, PING, AMQP handshake), each bounded to about a second."""
    out: list[Health] = []
    pg = urlsplit(creds.postgres_url)
    try:
        with psycopg.connect(creds.postgres_url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        out.append(Health("postgres", True, f"{pg.hostname}:{pg.port}"))
    except psycopg.Error as exc:
        out.append(Health("postgres", False, f"{pg.hostname}:{pg.port}: {_pg_reason(exc)}"))
    host, _, port = creds.redis_host.rpartition(":")
    try:
        redis.Redis(
            host=host,
            port=int(port),
            password=creds.redis_password or None,
            socket_timeout=1,
            socket_connect_timeout=1,
        ).ping()
        out.append(Health("redis", True, creds.redis_host))
    except redis.RedisError as exc:
        out.append(Health("redis", False, f"{creds.redis_host}: {type(exc).__name__}: {exc}"))
    mq = urlsplit(creds.rabbitmq_url)
    try:
        params = pika.URLParameters(creds.rabbitmq_url)
        params.connection_attempts, params.socket_timeout = 1, 1
        params.blocked_connection_timeout = 1
        pika.BlockingConnection(params).close()
        out.append(Health("rabbitmq", True, f"{mq.hostname}:{mq.port}"))
    except Exception as exc:  # pika raises many unrelated types; all mean "not usable"
        reason = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
        out.append(Health("rabbitmq", False, f"{mq.hostname}:{mq.port}: {reason}"[:200]))
    return out


def wait_ready(
    settings: InfraSettings, creds: Credentials, timeout: float, progress: Progress
) -> None:
    deadline = time.monotonic() + timeout
    said: set[str] = set()
    while True:
        results = check(settings, creds)
        for h in results:
            if h.ok and h.name not in said:
                progress(f"{h.name} ready")
                said.add(h.name)
        bad = [h for h in results if not h.ok]
        if not bad:
            return
        if time.monotonic() > deadline:
            raise InfraError("not ready: " + "; ".join(f"{h.name}: {h.detail}" for h in bad))
        time.sleep(0.5)


def stop_leftovers(progress: Progress) -> None:
    """What outlives the servers (Erlang's port mapper) is stopped with them."""
    if shutil.which("epmd") or Path("/usr/lib/erlang/erts/bin/epmd").exists():
        servers.stop_epmd(progress)
