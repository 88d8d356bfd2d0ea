"""How each infrastructure server is prepared and run in the foreground under the supervisor.

PostgreSQL, Redis and RabbitMQ from Debian's packages, listening on loopback only, with
their data, sockets and config in the mesh's home folder. Running in the foreground lets
the supervisor own the process: stop, kill -9 and restart work like for any service.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from agentia.runtime.programs import ProgramSpec

Progress = Callable[[str], None]


class ServerSetupError(RuntimeError):
    """A server could not be prepared; the message names the step and its log."""


def pg_bindir() -> Path:
    """The newest installed PostgreSQL server's bin folder."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: p.parts[-3])
    if not found:
        raise ServerSetupError("PostgreSQL server not found under /usr/lib/postgresql")
    return found[-1].parent


def _chown_tree(path: Path, user: str) -> None:
    for p in [path, *path.rglob("*")]:
        shutil.chown(p, user, user)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ServerSetupError(f"{what} failed: {proc.stderr.strip() or proc.stdout.strip()}")


def postgres_spec(home: Path, port: int, password: str, progress: Progress) -> ProgramSpec:
    """Initialise the cluster on first use (role and database ``agentia``) and run it."""
    data = home / "data" / "postgres"
    sock = home / "run" / "postgres"
    sock.mkdir(parents=True, exist_ok=True)
    shutil.chown(sock, "postgres", "postgres")
    sock.chmod(0o700)
    bindir = pg_bindir()
    options = [
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"port={port}",
        "-c",
        f"unix_socket_directories={sock}",
        "-c",
        "max_connections=300",
        "-c",
        "log_min_messages=warning",
        "-c",
        "fsync=on",
    ]
    if not (data / "PG_VERSION").exists():
        progress(f"initialising PostgreSQL in {data}")
        data.mkdir(parents=True, exist_ok=True)
        _chown_tree(data, "postgres")
        data.chmod(0o700)
        _run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            "initdb",
        )
        # Start once, privately on the socket only, to create the role and database.
        private = [
            "-c",
            "listen_addresses=",
            "-c",
            f"port={port}",
            "-c",
            f"unix_socket_directories={sock}",
        ]
        _run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                " ".join(private),
                "-w",
                "-t",
                "60",
                "-l",
                "/dev/null",
                "start",
            ],
            "starting PostgreSQL for first set-up",
        )
        try:
            ensure_role_and_db(str(sock), port, password)
        finally:
            _run(
                [
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                "stopping PostgreSQL after set-up",
            )
    return ProgramSpec(
        name="postgres",
        group="infra",
        user="postgres",
        directory=data,
        command=[str(bindir / "postgres"), "-D", str(data), *options],
        stopsignal="INT",
        stopwaitsecs=30,
        priority=100,
    )


def ensure_role_and_db(host: str, port: int, password: str) -> None:
    """Create (or re-password) the ``agentia`` role and its database, as the superuser."""
    with psycopg.connect(
        host=host, port=port, user="postgres", dbname="postgres", autocommit=True, connect_timeout=5
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'agentia'").fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE agentia LOGIN PASSWORD {}").format(sql.Literal(password))
        )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'agentia'").fetchone():
            conn.execute("CREATE DATABASE agentia OWNER agentia")


def redis_spec(home: Path, port: int, password: str) -> ProgramSpec:
    data = home / "data" / "redis"
    data.mkdir(parents=True, exist_ok=True)
    conf = home / "run" / "redis.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(render_redis_conf(data, port, password))
    conf.chmod(0o600)
    return ProgramSpec(
        name="redis",
        group="infra",
        directory=data,
        command=[shutil.which("redis-server") or "/usr/bin/redis-server", str(conf)],
        stopwaitsecs=20,
        priority=100,
    )


def render_redis_conf(data: Path, port: int, password: str) -> str:
    return "\n".join(
        [
            "bind 127.0.0.1",
            f"port {port}",
            "protected-mode yes",
            "daemonize no",
            f"dir {data}",
            "appendonly yes",
            "appendfsync everysec",
            f"requirepass {password}",
            "loglevel notice",
            'logfile ""',
            "save 60 1000",
            "",
        ]
    )


def rabbitmq_spec(home: Path, port: int, password: str) -> ProgramSpec:
    base = home / "data" / "rabbitmq"
    for sub in ("mnesia", "log", "home"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    conf = home / "run" / "rabbitmq.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(render_rabbitmq_conf(port, password))
    conf.chmod(0o600)
    plugins = home / "run" / "rabbitmq-enabled-plugins"
    plugins.write_text("[].\n")
    return ProgramSpec(
        name="rabbitmq",
        group="infra",
        directory=base,
        command=["/usr/lib/rabbitmq/bin/rabbitmq-server"],
        environment=rabbitmq_env(home, port),
        stopwaitsecs=60,
        priority=100,
    )


def rabbitmq_env(home: Path, port: int) -> dict[str, str]:
    """Environment for rabbitmq-server and rabbitmqctl: node name, files, cookie home."""
    base = home / "data" / "rabbitmq"
    return {
        "HOME": str(base / "home"),
        "RABBITMQ_NODENAME": "agentia@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(port + 20000),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_CONFIG_FILE": str(home / "run" / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "run" / "rabbitmq-enabled-plugins"),
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        "RABBITMQ_LOGS": "-",
        # Make the start script exec the Erlang VM instead of waiting on it as a child: the
        # supervisor then holds the broker's own pid, so kill -9 (chaos) really kills it.
        "RABBITMQ_ALLOW_INPUT": "true",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-noinput",
    }


def render_rabbitmq_conf(port: int, password: str) -> str:
    return "\n".join(
        [
            f"listeners.tcp.default = 127.0.0.1:{port}",
            "loopback_users = none",
            "default_vhost = /",
            "default_user = agentia",
            f"default_pass = {password}",
            "default_permissions.configure = .*",
            "default_permissions.read = .*",
            "default_permissions.write = .*",
            "log.console = true",
            "log.console.level = warning",
            "log.file = false",
            "",
        ]
    )


def stop_epmd(progress: Progress) -> None:
    """RabbitMQ starts Erlang's port mapper as a daemon; stop it so `down` leaves nothing."""
    epmd = shutil.which("epmd") or "/usr/lib/erlang/erts/bin/epmd"
    if Path(epmd).exists():
        subprocess.run([epmd, "-kill"], capture_output=True, check=False, timeout=10)
        time.sleep(0.2)
        progress("stopped epmd")
