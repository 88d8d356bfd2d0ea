"""Protocol-level health checks of PostgreSQL, Redis and RabbitMQ, each about a second.

Each check logs in the way the mesh does (SQL ``SELECT 1``, Redis AUTH + PING, an AMQP
login) and explains a failure in one line a user can act on, with no password in it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pika
import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

AUTH_MARKERS = (
    "password authentication failed",
    "does not exist",
    "no password supplied",
    "access_refused",
    "authentication",
    "wrongpass",
    "invalid username-password",
    "noauth",
    "without any password configured",
)


@dataclass(frozen=True)
class Health:
    name: str
    ok: bool
    detail: str
    auth: bool = False  # it answers but refuses agentia's login: waiting will not help


def auth_problem(text: str) -> bool:
    low = text.lower()
    return any(s in low for s in AUTH_MARKERS)


def describe(exc: BaseException) -> str:
    """All an exception says, nested ones included (pika wraps the cause in its args)."""
    return f"{type(exc).__name__}: {exc} {exc!r} " + " ".join(repr(a) for a in exc.args)


def reason(exc: BaseException, host: str, port: int, passwords: list[str], user: str = "") -> str:
    """One short line a user can act on, with no password in it."""
    low = describe(exc).lower()
    where = f"{host}:{port}" if host else "the server"
    login = f"the login of user {user}" if user else "the login"
    if auth_problem(low):
        fatal = next((ln for ln in str(exc).splitlines() if "FATAL:" in ln), "")
        why = fatal.split("FATAL:", 1)[1].strip() if fatal else f"it refuses {login}"
        if "without any password configured" in low:
            why = "it has no password set: it is not agentia's server"
        elif "wrongpass" in low or "invalid username-password" in low:
            why = "it refuses the password: it is not agentia's server"
        line = f"{where} answers, but {why}"
    elif "refused" in low:
        line = f"connection refused on {where}"
    elif "timed out" in low or "timeout" in low:
        line = f"no answer from {where} in time"
    elif "loading" in low or "starting up" in low:
        line = f"{where} is starting up"
    else:
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
        line = f"{where}: {first or type(exc).__name__}"
    return scrub(line, passwords)[:300]


def scrub(text: str, passwords: list[str]) -> str:
    for pw in passwords:
        if pw:
            text = text.replace(pw, "***").replace(quote(pw, safe=""), "***")
    return text


def check_postgres(url: str, passwords: list[str]) -> Health:
    u = urlsplit(url)
    host, port = u.hostname or "", u.port or 5432
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return Health("postgres", True, f"{host}:{port}")
    except psycopg.Error as exc:
        why = reason(exc, host, port, passwords, u.username or "")
        return Health("postgres", False, why, auth_problem(str(exc)))


def check_redis(host_port: str, password: str) -> Health:
    """AUTH as the mesh does, then PING, on one connection with no retries. (redis-py's
    own RESP3 login lets a server with no password at all pass, where Dapr's client fails:
    so AUTH is sent explicitly.)"""
    host, _, port = host_port.rpartition(":")
    connection: Any = redis.Connection  # untyped in redis-py
    conn = connection(
        host=host,
        port=int(port),
        protocol=2,
        socket_timeout=1,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        conn.connect()
        if password:
            conn.send_command("AUTH", password, check_health=False)
            conn.read_response()
        conn.send_command("PING", check_health=False)
        if conn.read_response() != b"PONG":
            raise redis.RedisError("no PONG to PING: not a Redis server")
        return Health("redis", True, host_port)
    except redis.RedisError as exc:
        why = reason(exc, host, int(port), [password])
        return Health("redis", False, why, auth_problem(describe(exc)))
    finally:
        conn.disconnect()


def check_rabbitmq(url: str, passwords: list[str]) -> Health:
    u = urlsplit(url)
    host, port = u.hostname or "", u.port or 5672
    log = logging.getLogger("pika")
    if log.level == logging.NOTSET:
        log.setLevel(logging.CRITICAL)  # a failed probe is reported here, not logged as an error
    try:
        params = pika.URLParameters(url)
        params.connection_attempts, params.socket_timeout, params.stack_timeout = 1, 1, 2
        pika.BlockingConnection(params).close()
        return Health("rabbitmq", True, f"{host}:{port}")
    except Exception as exc:  # pika raises many unrelated types; all mean "not usable"
        why = reason(exc, host, port, passwords, u.username or "")
        return Health("rabbitmq", False, why, auth_problem(describe(exc)))
