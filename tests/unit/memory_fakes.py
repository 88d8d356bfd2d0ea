"""An in-process memory for unit tests: memory's own routers over fake stores, and a
transport that stands in for the sidecars between a caller's ``DaprClient`` and memory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from agentia import names
from agentia_memory import kv_routes, memory_routes, routes
from agentia_memory.kv import Item
from agentia_memory.kv_rules import NotFound as NoItem
from agentia_memory.store import Conflict
from agentia_memory.store import NotFound as NoThread

STAMP = "2030-01-02T03:04:05.000006+00:00"
MOMENT = datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
ROUTERS = (routes.router, kv_routes.router, memory_routes.router)


class FakeThreads:
    """Just enough of ThreadStore for the routes."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.data: dict[str, list[dict[str, Any]]] = {}
        self.seen: list[tuple[Any, ...]] = []

    def _dict(self, tid: str) -> dict[str, Any]:
        meta = self.rows[tid]
        return {
            "thread_id": tid,
            "metadata": meta,
            "version": len(self.seen),
            "item_count": len(self.data[tid]),
            "created_at": STAMP,
            "updated_at": STAMP,
        }

    def _known(self, tid: str) -> None:
        if tid not in self.rows:
            raise NoThread(tid)

    def create(self, tid: str, metadata: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        if tid in self.rows:
            return self._dict(tid), False
        self.rows[tid], self.data[tid] = dict(metadata), []
        return self._dict(tid), True

    def get(self, tid: str) -> dict[str, Any]:
        self._known(tid)
        return self._dict(tid)

    def search(self, metadata: Any, ids: Any, limit: int, offset: int) -> list[dict[str, Any]]:
        return [self._dict(t) for t in self.rows][offset : offset + limit]

    def patch(self, tid: str, metadata: dict[str, Any]) -> dict[str, Any]:
        self._known(tid)
        self.rows[tid] |= metadata
        return self._dict(tid)

    def copy(self, tid: str, new: str) -> dict[str, Any]:
        self._known(tid)
        if new in self.rows:
            raise Conflict(f"thread {new} exists already")
        self.rows[new], self.data[new] = dict(self.rows[tid]), list(self.data[tid])
        return self._dict(new)

    def truncate(self, tid: str, count: int) -> int:
        self._known(tid)
        del self.data[tid][count:]
        return len(self.data[tid])

    def delete(self, tid: str) -> None:
        self._known(tid)
        del self.rows[tid], self.data[tid]

    def items(self, tid: str, limit: Any, run_id: Any, attempt: Any) -> list[dict[str, Any]]:
        self.seen.append(("items", limit, run_id, attempt))
        self._known(tid)
        return self.data[tid][-limit:] if limit else list(self.data[tid])

    def add_items(self, tid: str, items: list[dict[str, Any]]) -> int:
        self.create(tid, {})
        self.data[tid] += items
        return len(self.data[tid])

    def add_run_items(self, tid: str, run_id: str, attempt: int, first: int, items: Any) -> int:
        self.seen.append(("run", run_id, attempt, first))
        return self.add_items(tid, items)

    def settle_run(self, tid: str, run_id: str, attempt: int, count: int) -> int:
        self._known(tid)
        self.seen.append(("settle", run_id, attempt, count))
        return len(self.data[tid])

    def pop_item(self, tid: str) -> dict[str, Any] | None:
        self._known(tid)
        return self.data[tid].pop() if self.data[tid] else None

    def clear(self, tid: str) -> None:
        self._known(tid)
        self.data[tid].clear()


class FakeKV:
    """Just enough of KVStore for the routes."""

    def __init__(self) -> None:
        self.kept: dict[tuple[tuple[str, ...], str], Item] = {}

    def put(self, ns: list[str], key: str, value: dict[str, Any], **kw: Any) -> None:
        self.kept[(tuple(ns), key)] = Item(ns, key, value, MOMENT, MOMENT)

    def get(self, ns: list[str], key: str, refresh_ttl: bool = True) -> Item:
        try:
            return self.kept[(tuple(ns), key)]
        except KeyError:
            raise NoItem(f"no item '{key}' in namespace {ns}") from None

    def delete(self, ns: list[str], key: str) -> None:
        self.get(ns, key)
        del self.kept[(tuple(ns), key)]

    def search(self, prefix: Any, **kw: Any) -> list[Item]:
        return [Item(i.namespace, i.key, i.value, MOMENT, MOMENT, 0.25) for i in self.kept.values()]

    def list_namespaces(self, **kw: Any) -> list[list[str]]:
        return [list(ns) for ns in sorted({ns for ns, _ in self.kept})]


class FakeMemories:
    """Just enough of MemoryStore for the routes."""

    def __init__(self, kv: FakeKV) -> None:
        self.kv = kv

    def save(self, ns: list[str], content: str, kind: str, **kw: Any) -> tuple[str, bool]:
        key = kw.get("key") or "m1"
        created = (tuple(ns), key) not in self.kv.kept
        self.kv.put(ns, key, {"kind": kind, "content": content, "slot": kw.get("slot")})
        return key, created

    def search(self, prefix: list[str], query: Any, **kw: Any) -> list[Item]:
        return self.kv.search(prefix)

    def extracted(self, run_id: str) -> dict[str, Any] | None:
        found = {"run_id": run_id, "thread_id": "t1", "memory_keys": ["m1"]}
        return found if run_id == "r1" else None


def memory_app() -> FastAPI:
    app = FastAPI()
    for router in ROUTERS:
        app.include_router(router)
    app.state.threads = FakeThreads()
    app.state.kv = FakeKV()
    app.state.memories = FakeMemories(app.state.kv)
    return app


def through_sidecar(app: FastAPI) -> httpx.ASGITransport:
    """A transport that hands ``/v1.0/invoke/{app}/method/{path}`` to ``app`` as ``/{path}``,
    as the two sidecars between caller and memory do."""

    async def sidecar(scope: Scope, receive: Receive, send: Send) -> None:
        prefix = f"/v1.0/invoke/{names.MEMORY}/method"
        if scope["type"] == "http":
            assert scope["path"].startswith(prefix)
            raw = scope["raw_path"]
            scope = {**scope, "path": scope["path"][len(prefix) :], "raw_path": raw[len(prefix) :]}
        await app(scope, receive, send)

    return httpx.ASGITransport(app=sidecar)
