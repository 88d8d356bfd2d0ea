"""A thin async client for the Dapr sidecar's HTTP API, the only way services reach each other.

It adds the Dapr API token to every call, sends events as CloudEvents whose ``type`` is the
event class name and whose ``id`` is the event id, and turns Dapr's error bodies into
:class:`DaprError` with the sidecar's own reason.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from cloudevents.conversion import to_dict
from cloudevents.http import CloudEvent
from prometheus_client import Counter

from agentia import names
from agentia.contracts import InvokeError
from agentia.events import Event

CREATE_RETRY_S = 40.0  # about what the sidecar's outbound retry policy spends on an outage
# How the sidecar words a create of an existing key: the PostgreSQL component upserts only
# over an expired row, so a live one leaves "no item was updated"; 23505 is unique_violation;
# the Redis component's script fails with "failed to set key".
CONFLICT_MARKS = ("no item was updated", "23505", "failed to set key")
# Each store with create-only writes, and the component that makes them without retries.
CREATE_STORES = {
    names.STATE_STORE: names.STATE_STORE_CREATE,
    names.CACHE_STORE: names.CACHE_STORE_CREATE,
}


class DaprError(RuntimeError):
    """The sidecar refused or failed a call; ``status`` is its HTTP status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"dapr answered {status}: {reason}")
        self.status = status
        self.reason = reason


class ETagMismatch(DaprError):
    """A state write lost an optimistic-concurrency race (the ETag no longer matches)."""


def fields_reason(errors: Iterable[Any], skip: int = 0) -> str:
    """Validation errors as ``field: message; …``: pydantic's, or FastAPI's with ``skip=1``
    (their location starts with where the field was: body, query, path)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', [])[skip:])}: {e.get('msg')}"
        for e in errors
        if isinstance(e, dict)
    )


def answer_reason(resp: httpx.Response) -> str:
    """What an error answer says, short: FastAPI's ``detail`` (its validation errors as
    ``field: message``), Dapr's ``message``/``errorCode``, or the text."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500] or resp.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:500]
    detail = body.get("detail") or body.get("message") or body.get("errorCode") or body
    if isinstance(detail, list):
        return fields_reason(detail, skip=1) or resp.reason_phrase
    return str(detail)[:500]


# What a run costs in hops: every call an app makes to its sidecar, by kind and target (a
# store, topic, app or binding: a small fixed set). bench/hops.py reads it per run.
SIDECAR_CALLS = Counter(
    "agentia_sidecar_calls_total",
    "Calls an app made to its own Dapr sidecar, by kind (state.get, publish, invoke...) "
    "and target (store, topic, app or binding).",
    ["app", "call", "target"],
)
_STATE_OPS = {"bulk": "state.bulk", "transaction": "state.transact"}


def call_kind(method: str, path: str) -> tuple[str, str]:
    """The kind and target of one sidecar call from its method and path, e.g.
    ``("GET", "/v1.0/state/statestore/run:1")`` is ``("state.get", "statestore")``."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    if len(parts) < 2:
        return "other", ""
    area, rest = parts[1], parts[2:]
    target = rest[0] if rest else ""
    if area == "state" and rest:
        if method == "GET":
            return "state.get", target
        if method == "DELETE":
            return "state.delete", target
        op = rest[1] if len(rest) > 1 else ""
        return _STATE_OPS.get(op, "state.save"), target
    if area == "publish" and len(rest) > 1:
        return "publish", rest[1]
    if area in ("invoke", "bindings", "secrets"):
        return {"invoke": "invoke", "bindings": "binding", "secrets": "secret"}[area], target
    if area.startswith("workflows"):
        return "workflow", target
    return area, ""


@dataclass(frozen=True)
class StateItem:
    """A value read from a state store with the ETag to write it back with."""

    key: str
    value: Any
    etag: str | None


def cloudevent(event: Event, source: str) -> dict[str, Any]:
    """Wrap an event in a CloudEvents 1.0 envelope (structured mode), made by the CNCF
    ``cloudevents`` SDK: ``id`` is the event's id, ``type`` its class name."""
    attributes = {
        "id": event.event_id,
        "source": source,
        "type": event.cloudevent_type(),
        "time": event.occurred_at.isoformat(),
        "datacontenttype": "application/json",
    }
    envelope: dict[str, Any] = to_dict(CloudEvent(attributes, event.model_dump(mode="json")))
    return envelope


class DaprClient:
    """Calls to one sidecar. Use as an async context manager or call :meth:`aclose`."""

    def __init__(
        self,
        base_url: str,
        api_token: str | None,
        app_id: str,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"dapr-api-token": api_token} if api_token else {}
        self.app_id = app_id

        async def count(request: httpx.Request) -> None:
            call, target = call_kind(request.method, request.url.path)
            SIDECAR_CALLS.labels(app_id, call, target).inc()

        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            event_hooks={"request": [count]},
        )

    async def __aenter__(self) -> DaprClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @staticmethod
    def _raise_for(resp: httpx.Response) -> None:
        if resp.status_code < 400:
            return
        try:
            body = resp.json()
            reason = body.get("message") or body.get("errorCode") or resp.text
        except (json.JSONDecodeError, AttributeError):
            reason = resp.text or resp.reason_phrase
        if resp.status_code == 409 or "etag" in str(reason).lower():
            raise ETagMismatch(resp.status_code, str(reason))
        raise DaprError(resp.status_code, str(reason))

    async def healthy(self) -> tuple[bool, str]:
        """Whether the sidecar reports itself healthy, and why not."""
        try:
            resp = await self._http.get("/v1.0/healthz")
        except httpx.HTTPError as exc:
            return False, f"sidecar unreachable: {type(exc).__name__}"
        if resp.status_code == 204:
            return True, "ok"
        return False, f"sidecar answered {resp.status_code}"

    async def wait_outbound(self, timeout: float = 60.0) -> None:
        """Wait until the sidecar can make calls for us (components loaded), e.g. at start-up
        before the app listens: the sidecar serves its API before it can reach the app."""
        deadline = asyncio.get_running_loop().time() + timeout
        last = "not tried"
        while asyncio.get_running_loop().time() < deadline:
            try:
                resp = await self._http.get("/v1.0/healthz/outbound")
                if resp.status_code == 204:
                    return
                last = f"answered {resp.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            await asyncio.sleep(0.25)
        raise DaprError(503, f"sidecar not ready after {timeout:.0f}s ({last})")

    async def metadata(self) -> dict[str, Any]:
        resp = await self._http.get("/v1.0/metadata")
        self._raise_for(resp)
        return dict(resp.json())

    async def publish(
        self,
        topic: str,
        event: Event,
        pubsub: str = names.PUBSUB,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Publish ``event`` on ``topic``; returns once the broker confirmed it."""
        resp = await self._http.post(
            f"/v1.0/publish/{pubsub}/{topic}",
            content=json.dumps(cloudevent(event, self.app_id)),
            headers={"content-type": "application/cloudevents+json", **(headers or {})},
        )
        self._raise_for(resp)

    async def invoke(
        self,
        app_id: str,
        method: str,
        *,
        http_method: str = "POST",
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Service invocation through the sidecars; the caller reads the target's response."""
        return await self._http.request(
            http_method,
            f"/v1.0/invoke/{app_id}/method/{method.lstrip('/')}",
            json=json_body,
            headers=headers,
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )

    async def call(
        self,
        app_id: str,
        method: str,
        *,
        http_method: str = "POST",
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """Service invocation as :class:`agentia.contracts.Call` has it: the answer's JSON
        (None when empty), or :class:`InvokeError` with the target's status and reason."""
        resp = await self.invoke(
            app_id, method, http_method=http_method, json_body=body, timeout=timeout
        )
        if resp.status_code >= 400:
            raise InvokeError(app_id, resp.status_code, answer_reason(resp))
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    async def get_secret(self, key: str, store: str = names.SECRET_STORE) -> str:
        """One secret from the sidecar's secret store (never logged)."""
        resp = await self._http.get(f"/v1.0/secrets/{store}/{key}")
        self._raise_for(resp)
        return str(resp.json()[key])

    async def find_secret(self, key: str, store: str = names.SECRET_STORE) -> str | None:
        """An optional secret: None when the store does not have it. Reads the bulk listing,
        because asking for a missing key is an error the resiliency policy would retry."""
        resp = await self._http.get(f"/v1.0/secrets/{store}/bulk")
        self._raise_for(resp)
        entry = resp.json().get(key)
        return str(entry[key]) if isinstance(entry, dict) and key in entry else None

    async def get_state(self, store: str, key: str) -> StateItem | None:
        resp = await self._http.get(f"/v1.0/state/{store}/{key}")
        self._raise_for(resp)
        if resp.status_code == 204 or not resp.content:
            return None
        return StateItem(key=key, value=resp.json(), etag=resp.headers.get("etag"))

    async def save_over(
        self,
        store: str,
        key: str,
        value: Any,
        found: StateItem | None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Write ``value`` where ``found`` was read (None: the key was absent); raises
        ETagMismatch if the key changed since, so the caller reads again."""
        etag = found.etag if found else None
        await self.save_state(
            store, key, value, etag=etag, first_write=found is None, metadata=metadata
        )

    async def save_state(
        self,
        store: str,
        key: str,
        value: Any,
        *,
        etag: str | None = None,
        first_write: bool = False,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Write a value; with ``etag`` or ``first_write`` a lost race raises ETagMismatch."""
        item: dict[str, Any] = {"key": key, "value": value}
        if etag is not None:
            item["etag"] = etag
        if etag is not None or first_write:
            item["options"] = {"concurrency": "first-write", "consistency": "strong"}
        if metadata:
            item["metadata"] = metadata
        if first_write and etag is None and store in CREATE_STORES:
            await self._create(store, item)
            return
        resp = await self._http.post(f"/v1.0/state/{store}", json=[item])
        self._raise_for(resp)

    async def _create(self, store: str, item: dict[str, Any]) -> None:
        """A create-only write through ``store``'s create component (same data, no sidecar
        retries): an existing key is a lost race, answered at once; an outage is retried here
        for as long as the sidecar would have. After a retry, a duplicate holding our own
        value is our earlier attempt that committed without an answer, not a lost race."""
        deadline = asyncio.get_running_loop().time() + CREATE_RETRY_S
        delay, retried = 0.5, False
        while True:
            try:
                resp = await self._http.post(f"/v1.0/state/{CREATE_STORES[store]}", json=[item])
                if resp.status_code < 400:
                    return
                reason = resp.text
                if resp.status_code == 409 or any(m in reason for m in CONFLICT_MARKS):
                    # A store that is down can fail with the same words: a lost race only
                    # if the key is there.
                    found = await self._existing(store, item)
                    if found is not None:
                        if retried and found.value == item["value"]:
                            return
                        raise ETagMismatch(409, f"key '{item['key']}' exists")
                if resp.status_code < 500:
                    self._raise_for(resp)
            except httpx.TransportError as exc:
                reason = type(exc).__name__
            if asyncio.get_running_loop().time() + delay > deadline:
                raise DaprError(503, f"state store unavailable: {reason[:300]}")
            await asyncio.sleep(delay)
            delay, retried = min(delay * 2, 5.0), True

    async def transact(self, store: str, upserts: list[dict[str, Any]]) -> None:
        """Upsert several keys atomically; each item is {key, value, etag?, first_write?}.
        Any lost race (an ETag, or a first write of an existing key) raises ETagMismatch and
        writes nothing."""
        ops = []
        for item in upserts:
            request: dict[str, Any] = {"key": item["key"], "value": item["value"]}
            if item.get("etag") is not None:
                request["etag"] = item["etag"]
            if item.get("etag") is not None or item.get("first_write"):
                request["options"] = {"concurrency": "first-write", "consistency": "strong"}
            ops.append({"operation": "upsert", "request": request})
        resp = await self._http.post(f"/v1.0/state/{store}/transaction", json={"operations": ops})
        if resp.status_code >= 400 and any(m in resp.text for m in CONFLICT_MARKS):
            raise ETagMismatch(409, resp.text[:300])
        self._raise_for(resp)

    async def _existing(self, store: str, item: dict[str, Any]) -> StateItem | None:
        """What ``store`` holds under the item's key; None if nothing or the store is down."""
        try:
            return await self.get_state(store, str(item["key"]))
        except (DaprError, httpx.TransportError):
            return None

    async def get_bulk_state(self, store: str, keys: list[str]) -> dict[str, StateItem]:
        """Several keys in one call; missing keys are left out."""
        if not keys:
            return {}
        resp = await self._http.post(f"/v1.0/state/{store}/bulk", json={"keys": keys})
        self._raise_for(resp)
        found: dict[str, StateItem] = {}
        for entry in resp.json():
            if entry.get("data") is not None and not entry.get("error"):
                key = str(entry["key"])
                found[key] = StateItem(key=key, value=entry["data"], etag=entry.get("etag"))
        return found

    async def invoke_binding(
        self,
        name: str,
        operation: str,
        metadata: dict[str, str],
        data: Any = None,
        timeout: float | None = None,
    ) -> bytes:
        """An output binding's operation; returns what the binding answered (maybe empty)."""
        body: dict[str, Any] = {"operation": operation, "metadata": metadata}
        if data is not None:
            body["data"] = data
        resp = await self._http.post(
            f"/v1.0/bindings/{name}",
            json=body,
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
        self._raise_for(resp)
        return resp.content

    async def delete_state(self, store: str, key: str, *, etag: str | None = None) -> None:
        headers = {"If-Match": etag} if etag else None
        resp = await self._http.delete(f"/v1.0/state/{store}/{key}", headers=headers)
        self._raise_for(resp)
