"""State through the PostgreSQL state store on a real sidecar: round trip and ETag conflicts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest

from agentia import names
from agentia.dapr import DaprClient, ETagMismatch

from .conftest import ProbeApp

pytestmark = pytest.mark.integration


def test_state_round_trip_and_stale_etag_refused(probe_apps: Callable[..., ProbeApp]) -> None:
    app = probe_apps("state")
    key = f"test-{uuid.uuid4().hex}"

    async def go() -> None:
        async with DaprClient(app.dapr, app.token, app.app_id) as client:
            assert await client.get_state(names.STATE_STORE, key) is None
            await client.save_state(names.STATE_STORE, key, {"turn": 1, "text": "héllo"})
            first = await client.get_state(names.STATE_STORE, key)
            assert first is not None and first.value == {"turn": 1, "text": "héllo"}
            assert first.etag

            await client.save_state(names.STATE_STORE, key, {"turn": 2}, etag=first.etag)
            second = await client.get_state(names.STATE_STORE, key)
            assert second is not None and second.value == {"turn": 2}
            assert second.etag != first.etag

            # A writer holding the old ETag lost the race: refused, the newer value kept.
            with pytest.raises(ETagMismatch):
                await client.save_state(names.STATE_STORE, key, {"turn": 99}, etag=first.etag)
            kept = await client.get_state(names.STATE_STORE, key)
            assert kept is not None and kept.value == {"turn": 2}

            await client.delete_state(names.STATE_STORE, key)
            assert await client.get_state(names.STATE_STORE, key) is None

    asyncio.run(go())


def test_cache_store_on_redis_round_trip(probe_apps: Callable[..., ProbeApp]) -> None:
    app = probe_apps("cache")
    key = f"test-{uuid.uuid4().hex}"

    async def go() -> None:
        async with DaprClient(app.dapr, app.token, app.app_id) as client:
            await client.save_state(names.CACHE_STORE, key, {"hot": True})
            item = await client.get_state(names.CACHE_STORE, key)
            assert item is not None and item.value == {"hot": True}
            await client.delete_state(names.CACHE_STORE, key)

    asyncio.run(go())
