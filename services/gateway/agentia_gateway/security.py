"""Who may call the public API, how often, and with how much: API keys or JWTs, scopes,
per-key rate limits held in Redis (so every replica counts against one limit), body sizes.

Keys and the JWT signing key come from the Dapr secret store and are re-read every few
seconds, so `agentia keys create/revoke` takes effect without a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentia import names
from agentia.apikeys import KeyRecord, KeyRing, ModelLimit
from agentia.dapr import DaprClient, DaprError

log = logging.getLogger(__name__)
READ_METHODS = {"GET", "HEAD", "OPTIONS"}
# POSTs that only read: a read key may call them.
READ_POSTS = ("/search", "/store/namespaces", "/store/items/get")
WINDOW_S = 60
COUNTER_TIMEOUT_S = 0.5
READ_EVERY_S = 1.0  # how stale this replica's view of a key's count may be
KEYS_RETRY_S = 1.0  # how often a replica that has no keys yet tries to read them


@dataclass(frozen=True)
class Principal:
    """The caller, as authenticated."""

    id: str  # key id, or "jwt:<sub>"
    name: str
    scope: str  # read | write
    rate_limit_per_minute: int | None = None
    token_budget_per_day: int | None = None
    cost_budget_micro_usd_per_day: int | None = None
    model_limits: dict[str, ModelLimit] = field(default_factory=dict)


def _principal(record: KeyRecord) -> Principal:
    return Principal(
        record.id,
        record.name,
        record.scope,
        record.rate_limit_per_minute,
        record.token_budget_per_day,
        record.cost_budget_micro_usd_per_day,
        record.model_limits,
    )


class Denied(Exception):
    """The request is refused: ``status`` and a reason the caller can act on."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or {}


class Authenticator:
    """Checks API keys (``x-api-key`` or ``Authorization: Bearer agk_…``) and HS256 JWTs."""

    def __init__(self, client: DaprClient, refresh_s: float) -> None:
        self.client, self.refresh_s = client, refresh_s
        self.ring = KeyRing()
        self.jwt_key: str | None = None
        self.loaded = False

    async def refresh(self) -> None:
        raw = await self.client.find_secret(names.SECRET_GATEWAY_API_KEYS)
        self.ring = KeyRing.from_secret(raw)
        self.jwt_key = await self.client.find_secret(names.SECRET_GATEWAY_JWT_KEY)
        self.loaded = True

    async def keep_fresh(self) -> None:
        """Re-read the keys forever; a failed read keeps the last good ones. Until a first
        read succeeds, try every second: every keyed request waits on it."""
        while True:
            await asyncio.sleep(self.refresh_s if self.loaded else KEYS_RETRY_S)
            try:
                await self.refresh()
            except (DaprError, httpx.HTTPError, ValueError) as exc:
                log.warning("API keys not refreshed", extra={"why": str(exc)[:200]})

    def authenticate(self, headers: dict[str, str]) -> Principal:
        token = headers.get("x-api-key", "").strip()
        auth = headers.get("authorization", "")
        if not token and auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
        if not token:
            raise Denied(401, "no API key: send it as the x-api-key header or a Bearer token")
        if not self.loaded:
            # Not "unknown key": this replica could not read the keys yet (its sidecar or the
            # secret store starting, or moving); the same request will pass in a moment.
            raise Denied(
                503,
                "the gateway has not loaded its API keys yet; retry shortly",
                {"Retry-After": str(int(KEYS_RETRY_S) + 1)},
            )
        if token.startswith("agk_"):
            record = self.ring.verify(token)
            if record is None:
                raise Denied(401, "the API key is not valid (unknown or revoked)")
            return _principal(record)
        return self._jwt(token)

    def principal(self, key_id: str) -> Principal | None:
        """The key ``key_id`` (not its secret) as a principal, None when unknown or revoked."""
        record = self.ring.keys.get(key_id)
        return _principal(record) if record is not None else None

    def _jwt(self, token: str) -> Principal:
        if not self.jwt_key:
            raise Denied(401, "not an API key, and this gateway takes no JWTs (no signing key)")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.jwt_key,
                algorithms=["HS256"],
                options={"require": ["exp", "sub"]},
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise Denied(401, "the JWT has expired") from None
        except jwt.InvalidTokenError as exc:
            raise Denied(401, f"the JWT is not valid: {exc}") from None
        raw_scope = claims.get("scope", "")
        scopes = set(raw_scope.split() if isinstance(raw_scope, str) else raw_scope)
        if scopes & {"write", "agentia:write"}:
            scope = "write"
        elif scopes & {"read", "agentia:read"}:
            scope = "read"
        else:
            raise Denied(403, "the JWT's scope claim grants neither read nor write")
        sub = str(claims["sub"])[:128]
        return Principal(f"jwt:{sub}", sub, scope)


def needs_write(method: str, path: str) -> bool:
    if method in READ_METHODS:
        return False
    return not (method == "POST" and path.endswith(READ_POSTS))


def authorize(principal: Principal, method: str, path: str) -> None:
    if needs_write(method, path) and principal.scope != "write":
        raise Denied(403, f"this key is read-only: {method} {path} needs a write key")


class RateLimiter:
    """Fixed one-minute windows counted with Redis INCR (a Dapr output binding).

    A request costs one call: the INCR. The count is read back (a second call) only when
    the last count read here is over a second old or the count as known here has reached
    half the limit: this replica's view is the last count read plus its own INCRs since, so
    other replicas' requests are seen within a second, and from half the limit on every
    request reads the exact count. One replica refuses exactly at the limit; a burst spread
    over R replicas within one second can pass more (each may take up to half the limit
    before it reads). If Redis is down the gateway lets requests through (and says so
    in its log) rather than refusing everything: rate limiting degrades, the API does not.
    """

    def __init__(
        self, client: DaprClient, default_per_minute: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.client, self.default, self.clock = client, default_per_minute, clock
        self._warned = 0.0
        # Per counter key: (count last read, INCRs here since, when it was read).
        self._known: dict[str, tuple[int, int, float]] = {}

    async def hit(self, principal: Principal) -> None:
        limit = principal.rate_limit_per_minute or self.default
        now = self.clock()
        window = int(now // WINDOW_S)
        key = f"agentia-rl:{principal.id}:{window}"
        meta = {"key": key, "ttlInSeconds": str(WINDOW_S * 2)}
        try:
            # Short timeouts: with Redis down the sidecar retries for long; we stop waiting.
            await self.client.invoke_binding(
                names.RATE_LIMIT_BINDING, "increment", meta, timeout=COUNTER_TIMEOUT_S
            )
            count = self._counted(key, now, limit)
            if count is None:
                raw = await self.client.invoke_binding(
                    names.RATE_LIMIT_BINDING, "get", {"key": key}, timeout=COUNTER_TIMEOUT_S
                )
                count = int(raw or b"0")
                self._read(key, count, now)
        except (DaprError, httpx.HTTPError, ValueError) as exc:
            if now - self._warned > 30:
                self._warned = now
                log.warning("rate limits not enforced: counter store down", extra={"why": str(exc)})
            return
        if count > limit:
            retry = max(1, int((window + 1) * WINDOW_S - now))
            raise Denied(
                429,
                f"rate limit of {limit} requests per minute reached for key {principal.id}; "
                f"retry in {retry} s",
                {"Retry-After": str(retry)},
            )

    def _counted(self, key: str, now: float, limit: int) -> int | None:
        """The count as known here after this INCR, or None when it must be read."""
        known = self._known.get(key)
        if known is None:
            return None
        read, since, at = known
        count = read + since + 1
        if now - at > READ_EVERY_S or count * 2 >= limit:
            return None
        self._known[key] = (read, since + 1, at)
        return count

    def _read(self, key: str, count: int, now: float) -> None:
        if len(self._known) > 10_000:  # last windows' keys
            self._known = {k: v for k, v in self._known.items() if now - v[2] < WINDOW_S}
        self._known[key] = (count, 0, now)


def unstorable(body: bytes) -> bool:
    """Whether a JSON body holds text PostgreSQL cannot store: a NUL character or an unpaired
    UTF-16 surrogate, in any key or value. Refused at the door with a 422 rather than failing
    deep in a store with a 5xx. Only a body with a backslash-u escape can hold either, so most
    bodies are never parsed; parsing (not a pattern) tells a real escape from an escaped
    backslash followed by the letter u, as in an agent's echo of JSON text."""
    if b"\\u" not in body:
        return False
    try:
        value = json.loads(body)
    except ValueError:
        return False  # not JSON: the route's own validation answers
    return _bad_text(value)


def _bad_text(value: Any) -> bool:
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_bad_text(k) or _bad_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_bad_text(v) for v in value)
    return False


class BodyLimit:
    """On paths under ``prefixes``: refuse bodies over ``max_bytes`` with a 413, whether or not
    they declare a length, and text PostgreSQL cannot store with a 422; read a body sent with
    no JSON content type (``curl -d`` sends a form's) as the JSON the API speaks.

    The body is read whole (at most ``max_bytes``) before the app sees it, so these answers
    come from here, not from a parser failing half-way through."""

    def __init__(self, app: ASGIApp, max_bytes: int, prefixes: tuple[str, ...]) -> None:
        self.app, self.max_bytes, self.prefixes = app, max_bytes, prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _send_json(send, 413, f"request body over {self.max_bytes} bytes")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # the client left: let the app see it
                return
            body.extend(message.get("body", b""))
            if len(body) > self.max_bytes:
                await _send_json(send, 413, f"request body over {self.max_bytes} bytes")
                return
            if not message.get("more_body"):
                break
        if unstorable(bytes(body)):
            why = "text may not contain NUL (\\u0000) or unpaired surrogates (\\ud800-\\udfff)"
            await _send_json(send, 422, why)
            return
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if body and kind in NOT_JSON_TYPES:
            scope = {**scope, "headers": _json_content_type(scope["headers"])}
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


# Content types a JSON body arrives with from clients that do not say it is JSON: none, curl's
# -d (a form), and plain text. Anything else (multipart, XML…) is left for the app to refuse.
NOT_JSON_TYPES = frozenset({b"", b"application/x-www-form-urlencoded", b"text/plain"})


def _json_content_type(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in headers if k.lower() != b"content-type"]
    return [*kept, (b"content-type", b"application/json")]


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
