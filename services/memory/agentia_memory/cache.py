"""Hot reads of thread items from Redis, through the sidecar's ``cache`` state store.

:class:`CachedThreadStore` is the :class:`ThreadStore` with a read-through cache on
``items()`` and an invalidation after every committed change to a thread's items. It talks
to the sidecar with a small synchronous HTTP client because the thread routes are sync
handlers that FastAPI runs in worker threads.

Consistency: an entry carries the thread ``version`` it was read at, and a read uses it only
if the thread row (one primary-key lookup) still has that version; every change to a
thread's items bumps the version in the same transaction, so a read never returns stale
items, whichever replica or code path wrote them. Writes also delete the entry after their
commit, and entries expire after ``ttl_s``. A cache that cannot be reached is skipped:
reads go to PostgreSQL.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from agentia import names
from agentia_memory.store import ThreadStore

log = logging.getLogger(__name__)


class ThreadItemsCache:
    """Whole item lists of small threads, by thread id, in the ``cache`` state store."""

    def __init__(
        self, dapr_url: str, api_token: str | None, ttl_s: int = 60, timeout: float = 2.0
    ) -> None:
        headers = {"dapr-api-token": api_token} if api_token else {}
        self._http = httpx.Client(base_url=dapr_url, headers=headers, timeout=timeout)
        self._base = f"/v1.0/state/{names.CACHE_STORE}"
        self.ttl_s = ttl_s
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(thread_id: str) -> str:
        return f"thread-items:{thread_id}"

    def get(self, thread_id: str, version: int) -> list[dict[str, Any]] | None:
        try:
            resp = self._http.get(f"{self._base}/{self.key(thread_id)}")
        except httpx.HTTPError as exc:
            log.warning("cache unreachable", extra={"reason": type(exc).__name__})
            return None
        entry = resp.json() if resp.status_code == 200 and resp.content else None
        if not isinstance(entry, dict) or entry.get("version") != version:
            self.misses += 1
            return None
        self.hits += 1
        return list(entry["items"])

    def put(self, thread_id: str, version: int, items: list[dict[str, Any]]) -> None:
        body = [
            {
                "key": self.key(thread_id),
                "value": {"version": version, "items": items},
                "metadata": {"ttlInSeconds": str(self.ttl_s)},
            }
        ]
        try:
            self._http.post(self._base, json=body)
        except httpx.HTTPError as exc:
            log.warning("cache write failed", extra={"reason": type(exc).__name__})

    def invalidate(self, thread_id: str) -> None:
        try:
            resp = self._http.delete(f"{self._base}/{self.key(thread_id)}")
            if resp.status_code >= 400:
                log.warning("cache delete refused", extra={"status": resp.status_code})
        except httpx.HTTPError as exc:
            # The entry expires within ttl_s anyway; say so loudly.
            log.warning("cache delete failed", extra={"reason": type(exc).__name__})

    def close(self) -> None:
        self._http.close()


class CachedThreadStore:
    """A ThreadStore whose item reads go through the cache (threads up to ``max_items``).
    Every other operation is the store's own (delegated), so new ones keep working."""

    def __init__(self, store: ThreadStore, cache: ThreadItemsCache, max_items: int = 500) -> None:
        self.store = store
        self.cache = cache
        self.max_items = max_items

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def items(
        self,
        thread_id: str,
        limit: int | None = None,
        run_id: str | None = None,
        attempt: int | None = None,
    ) -> list[dict[str, Any]]:
        if run_id is not None and attempt is not None and attempt > 1:
            # A retried run's view leaves out what its earlier attempts wrote: not cached.
            # (A first attempt has no earlier one: it sees the whole thread, cached.)
            view: list[dict[str, Any]] = self.store.items(thread_id, limit, run_id, attempt)
            return view
        thread: dict[str, Any] = self.store.get(thread_id)  # NotFound as before; the version
        if thread["item_count"] > self.max_items:
            big: list[dict[str, Any]] = self.store.items(thread_id, limit)
            return big  # big threads are never cached whole
        cached = self.cache.get(thread_id, thread["version"])
        if cached is None:
            # Items read after the version: at least as new as it, so never stale.
            cached = list(self.store.items(thread_id, None))
            self.cache.put(thread_id, thread["version"], cached)
        return cached[-limit:] if limit else cached

    def add_items(self, thread_id: str, items: list[dict[str, Any]]) -> int:
        try:
            return int(self.store.add_items(thread_id, items))
        finally:
            self.cache.invalidate(thread_id)

    def add_run_items(
        self, thread_id: str, run_id: str, attempt: int, first: int, items: list[dict[str, Any]]
    ) -> int:
        try:
            return int(self.store.add_run_items(thread_id, run_id, attempt, first, items))
        finally:
            self.cache.invalidate(thread_id)

    def settle_run(self, thread_id: str, run_id: str, attempt: int, count: int) -> int:
        try:
            return int(self.store.settle_run(thread_id, run_id, attempt, count))
        finally:
            self.cache.invalidate(thread_id)

    def pop_item(self, thread_id: str) -> dict[str, Any] | None:
        try:
            item: dict[str, Any] | None = self.store.pop_item(thread_id)
            return item
        finally:
            self.cache.invalidate(thread_id)

    def clear(self, thread_id: str) -> None:
        try:
            self.store.clear(thread_id)
        finally:
            self.cache.invalidate(thread_id)

    def delete(self, thread_id: str) -> None:
        try:
            self.store.delete(thread_id)
        finally:
            self.cache.invalidate(thread_id)
