"""RabbitMQ, PostgreSQL and Redis for the mesh: install, prepare, check.

A server already answering at its address is reused and left alone; one the user runs
elsewhere is named by a URL (``AGENTIA_POSTGRES_URL``, ``AGENTIA_REDIS_URL``,
``AGENTIA_RABBITMQ_URL``). The rest are installed from Debian's packages (as root) and run
under the mesh's supervisor. Credentials are generated once into the mesh's secrets file,
which Dapr's local.file secret store reads; they are never printed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from agentia.paths import agentia_home
from agentia_tools.runtime import debian, rabbitmq_cluster
from agentia_tools.runtime import infra_servers as servers
from agentia_tools.runtime.infra_checks import (
    Health,
    check_postgres,
    check_rabbitmq,
    check_redis,
    reason,
    scrub,
)
from agentia_tools.runtime.infra_config import (
    SERVERS,
    Credentials,
    InfraError,
    InfraSettings,
    load_or_create_credentials,
)
from agentia_tools.runtime.programs import ProgramSpec
from agentia_tools.runtime.secrets_file import secrets_path

__all__ = [
    "Credentials",
    "Health",
    "InfraError",
    "InfraSettings",
    "bootstrap_after_start",
    "check",
    "ensure_packages",
    "load_or_create_credentials",
    "missing_packages",
    "prepare",
    "stop_leftovers",
    "wait_ready",
]

Progress = Callable[[str], None]
PACKAGES = {"postgres": "postgresql", "redis": "redis-server", "rabbitmq": "rabbitmq-server"}
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


# -- packages ----------------------------------------------------------------------------


def _installed(name: str) -> bool:
    if name == "postgres":  # postgresql-client also has a bin folder there: look for the server
        return any(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if name == "redis":
        return Path("/usr/bin/redis-server").exists()
    return (servers.RABBITMQ_BIN / "rabbitmq-server").exists()


def missing_packages(settings: InfraSettings | None = None) -> list[str]:
    """Debian packages of the servers the mesh would run itself that are not installed."""
    settings = settings or InfraSettings.from_env()
    return [PACKAGES[n] for n in SERVERS if not settings.external(n) and not _installed(n)]


def ensure_packages(settings: InfraSettings, progress: Progress) -> None:
    """Install the Debian packages of the servers we run, when missing, without letting
    their install scripts start them as system services (we run them ourselves)."""
    missing = missing_packages(settings)
    if not missing:
        return
    cmd = debian.install_command(missing)
    if not debian.can_install():
        how = f"sudo {' '.join(cmd)}" if shutil.which("apt-get") else "your packages"
        raise InfraError(
            f"missing {', '.join(missing)}; install them as root with:\n  {how}\n"
            "or, with Docker, run them from deploy/compose/compose.yaml and set "
            "AGENTIA_POSTGRES_URL, AGENTIA_REDIS_URL, AGENTIA_RABBITMQ_URL (see that file)"
        )
    progress(f"installing {', '.join(missing)} from Debian's packages")
    before = {n for n in SERVERS if servers.answering(settings.host, settings.port(n))}
    had_policy = POLICY_RC_D.exists()
    if not had_policy:  # invoke-rc.d and deb-systemd-invoke then refuse to start services
        POLICY_RC_D.write_text("#!/bin/sh\n# agentia: no service starts on install\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        debian.apt_install(missing, progress)
    finally:
        if not had_policy:
            POLICY_RC_D.unlink(missing_ok=True)
    _keep_services_off(settings, missing, before, progress)
    servers.stop_epmd(lambda _m: None)  # a package's script may have started it
    progress(f"installed {', '.join(missing)}")


def _keep_services_off(
    settings: InfraSettings, installed: list[str], before: set[str], progress: Progress
) -> None:
    """What we just installed must not run (now or at boot) as a system service."""
    systemd = Path("/run/systemd/system").exists()
    for name in SERVERS:
        pkg = PACKAGES[name]
        if pkg not in installed:
            continue
        if systemd:
            cmd = ["systemctl", "disable", "--now", pkg]
        elif name not in before and servers.answering(settings.host, settings.port(name)):
            cmd = ["service", pkg, "stop"]
        else:
            continue
        subprocess.run(cmd, capture_output=True, check=False, timeout=120)
        progress(f"{pkg}: system service stopped and left off (agentia runs its own)")


# -- preparing and bootstrapping ---------------------------------------------------------


def prepare(
    home: Path,
    settings: InfraSettings,
    creds: Credentials,
    progress: Progress,
    managed: set[str] | None = None,
    broker: str = "single",
) -> list[ProgramSpec]:
    """Specs for the servers the mesh runs itself: not external, not already answering
    (unless our own supervisor runs it: ``managed``). Each runs in the foreground.
    A server already answering is reused if it takes agentia's login (PostgreSQL's role
    and database are created on it when its superuser is reachable by peer). ``broker``
    ``cluster``: three RabbitMQ nodes behind a front (runtime/rabbitmq_cluster.py)."""
    managed = managed or set()
    todo: list[str] = []
    for name in SERVERS:
        port = settings.port(name)
        if settings.external(name):
            progress(f"{name}: using the server you named (AGENTIA_{name.upper()}_URL)")
        elif name not in managed and servers.answering(settings.host, port):
            progress(f"{name}: reusing the server already answering on {settings.host}:{port}")
            _check_reused(name, home, settings, creds, progress)
        elif not _installed(name):
            cmd = " ".join(debian.install_command([PACKAGES[name]]))
            raise InfraError(f"{name} is not installed; as root: {cmd}")
        else:
            todo.append(name)
    if "rabbitmq" in todo:
        try:
            socket.getaddrinfo("localhost", None)
        except OSError:
            raise InfraError(
                "`localhost` does not resolve, and RabbitMQ's node name needs it: "
                "add `127.0.0.1 localhost` to /etc/hosts"
            ) from None
    if not todo:
        return []
    specs = []
    step = "the data folder"
    try:
        root = servers.server_root(home)
        if root != home:
            progress(f"servers keep their data in {root} (their users cannot reach {home})")
        for name in todo:
            step, port, host = name, settings.port(name), settings.host
            if name == "postgres":
                pw = creds.postgres_password
                specs.append(servers.postgres_spec(root, host, port, pw, progress))
            elif name == "redis":
                specs.append(servers.redis_spec(root, host, port, creds.redis_password))
            elif broker == "cluster":
                pw = creds.rabbitmq_password
                specs += rabbitmq_cluster.node_specs(root, port, host, pw)
            else:
                specs.append(servers.rabbitmq_spec(root, host, port, creds.rabbitmq_password))
    except (servers.ServerSetupError, OSError, psycopg.Error) as exc:
        raise InfraError(f"preparing {step}: {exc}") from exc
    return specs


def _check_reused(
    name: str, home: Path, settings: InfraSettings, creds: Credentials, progress: Progress
) -> None:
    health = _check_one(name, creds)
    if health.ok:
        return
    if name == "postgres" and health.auth:
        _postgres_login(home, settings, creds, progress)
        return
    port = settings.port(name)
    raise InfraError(
        f"{name}: {health.detail}\nThe server on {settings.host}:{port} is not agentia's: stop "
        f"it, or set AGENTIA_{name.upper()}_PORT to a free port (agentia then runs its own), "
        f"or AGENTIA_{name.upper()}_URL to a server with agentia's credentials"
    )


def _postgres_login(
    home: Path, settings: InfraSettings, creds: Credentials, progress: Progress
) -> None:
    """Create the role and database on a local server we did not set up, as its superuser
    over a unix socket (peer authentication as the ``postgres`` user: needs root)."""
    port = settings.postgres_port
    socks = _pg_socket_dirs(home, port)
    ok, where = servers.psql_as_superuser(socks, port, _role_script(creds.postgres_password))
    if not ok:
        raise InfraError(
            f"postgres on {settings.host}:{port} is not agentia's and has no role agentia "
            f"with agentia's password ({where}). Either, as its superuser:\n"
            "  CREATE ROLE agentia LOGIN PASSWORD '<local-postgres-password in "
            f"{secrets_path(home)}>'; CREATE DATABASE agentia OWNER agentia;\n"
            "or stop that server, or set AGENTIA_POSTGRES_PORT to a free port (agentia then "
            "runs its own), or AGENTIA_POSTGRES_URL"
        )
    progress(f"postgres: role and database agentia set up as its superuser ({where})")


def _pg_socket_dirs(home: Path, port: int) -> list[Path]:
    own = servers.postgres_socket_dir(servers.server_root(home), port)
    return [own, Path("/var/run/postgresql"), Path("/tmp")]  # noqa: S108 (Debian's, upstream's)


def _role_script(password: str) -> str:
    """psql script: role and database agentia, idempotent. The password is a quoted literal."""
    literal = "'" + password.replace("'", "''") + "'"
    lines = [
        "SELECT 'CREATE ROLE agentia' WHERE NOT EXISTS",
        "  (SELECT 1 FROM pg_roles WHERE rolname = 'agentia') \\gexec",
        f"ALTER ROLE agentia LOGIN PASSWORD {literal};",
        "SELECT 'CREATE DATABASE agentia OWNER agentia' WHERE NOT EXISTS",
        "  (SELECT 1 FROM pg_database WHERE datname = 'agentia') \\gexec",
    ]
    return "\n".join(lines) + "\n"


def bootstrap_after_start(
    settings: InfraSettings, creds: Credentials, progress: Progress, home: Path | None = None
) -> None:
    """After the servers answer: PostgreSQL's role and database (on a reused local server),
    and the pgvector extension where the server has it. RabbitMQ's user, vhost and
    permissions are imported from definitions at each of its boots (see infra_servers)."""
    home = home or agentia_home()
    if not settings.external("postgres"):
        health = _check_one("postgres", creds)
        if not health.ok and health.auth:
            _postgres_login(home, settings, creds, progress)
        elif not health.ok:
            raise InfraError(f"postgres: {health.detail}")
    try:
        with psycopg.connect(creds.postgres_url, connect_timeout=5, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
                return
            if not conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone():
                hint = ""
                if not settings.external("postgres") and servers.bundled_pg_bindir():
                    hint = ": `agentia down && agentia postgres upgrade` moves this cluster to "
                    hint += "the bundled PostgreSQL 16 with pgvector"
                progress(
                    "postgres: pgvector is not installed on this server; memory search ranks "
                    f"exactly in the service{hint}"
                )
                return
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                progress("postgres: pgvector enabled")
                return
            except psycopg.Error:
                pass
    except psycopg.Error as exc:
        raise InfraError(f"postgres: {reason(exc, '', 0, creds.passwords())}") from None
    script = "\\connect agentia\nCREATE EXTENSION IF NOT EXISTS vector;\n"
    port = settings.postgres_port
    if (
        not settings.external("postgres")
        and servers.psql_as_superuser(_pg_socket_dirs(home, port), port, script)[0]
    ):
        progress("postgres: pgvector enabled")
    else:
        progress("postgres: pgvector is available, but only a superuser may enable it")


# -- health ------------------------------------------------------------------------------


def _check_one(name: str, creds: Credentials) -> Health:
    pws = creds.passwords()
    if name == "postgres":
        return check_postgres(creds.postgres_url, pws)
    if name == "redis":
        return check_redis(creds.redis_host, creds.redis_password)
    return check_rabbitmq(creds.rabbitmq_url, pws)


def check(settings: InfraSettings, creds: Credentials) -> list[Health]:
    """Real protocol checks (SQL, AUTH + PING, AMQP login), each bounded to about a second."""
    return [_check_one(name, creds) for name in SERVERS]


def wait_ready(
    settings: InfraSettings,
    creds: Credentials,
    timeout: float,
    progress: Progress,
    home: Path | None = None,
) -> None:
    """Poll :func:`check` until every server answers; name what is not up, with its log.
    A server that answers but refuses agentia's login fails after 10s, except that a local
    PostgreSQL gets its role (re)set once as its superuser (a password changed in
    secrets.json, a server agentia did not create)."""
    home = home or agentia_home()
    started = time.monotonic()
    said: set[str] = set()
    refusing: dict[str, float] = {}
    repaired = settings.external("postgres")
    while True:
        results = check(settings, creds)
        now = time.monotonic()
        for h in results:
            if h.ok and h.name not in said:
                progress(f"{h.name} ready ({now - started:.1f}s)")
                said.add(h.name)
            if not h.auth:
                refusing.pop(h.name, None)
            elif h.name == "postgres" and not repaired:
                repaired = True
                _postgres_login(home, settings, creds, progress)
            else:
                refusing.setdefault(h.name, now)
        bad = [h for h in results if not h.ok]
        if not bad:
            return
        stuck = any(now - refusing.get(h.name, now) > 10 for h in bad)
        if stuck or now - started > timeout:
            lines = [f"not ready after {now - started:.0f}s:"]
            for h in bad:
                lines.append(f"  {h.name}: {h.detail}")
                lines += _log_hint(h.name, settings, home, creds)
            raise InfraError("\n".join(lines))
        time.sleep(0.3)


def _log_hint(name: str, settings: InfraSettings, home: Path, creds: Credentials) -> list[str]:
    if settings.external(name):
        return [f"    (the server you named in AGENTIA_{name.upper()}_URL)"]
    log = home / "logs" / f"{name}.log"
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return [f"    log: {log} (none: was it started?)"]
    tail = [scrub(ln, creds.passwords())[:200] for ln in text.splitlines() if ln.strip()][-3:]
    return [f"    log: {log}", *(f"    | {ln}" for ln in tail)]


def stop_leftovers(progress: Progress) -> None:
    """What outlives the servers (Erlang's port mapper) is stopped with them."""
    servers.stop_epmd(progress)
