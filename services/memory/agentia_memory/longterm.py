"""Start-up and shut-down of the store, long-term memory, the thread-items cache and the
TTL sweeper (called from ``app.py``, which stays wiring only)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI
from sqlalchemy import Engine

from agentia import names
from agentia.service import dapr_client
from agentia_memory.cache import CachedThreadStore, ThreadItemsCache
from agentia_memory.db import MIGRATION_LOCK
from agentia_memory.embeddings import MiniLMEmbedder, make_embedder
from agentia_memory.extraction import Extractor, HeuristicExtractor, ModelExtractor
from agentia_memory.kv import KVStore
from agentia_memory.memories import MemoryStore
from agentia_memory.settings import MemorySettings
from agentia_memory.vectors import Unindexed, open_index

log = logging.getLogger(__name__)


async def _sweep(kv: KVStore, every_s: float) -> None:
    # Expired items are never returned (reads filter on expires_at); this frees their rows.
    while True:
        await asyncio.sleep(every_s)
        try:
            gone = await asyncio.to_thread(kv.sweep_expired)
            if gone:
                log.info("expired store items swept", extra={"count": gone})
        except Exception as exc:  # a database blip must not end the sweeper
            log.warning("sweep failed", extra={"reason": str(exc)})


async def start(app: FastAPI, engine: Engine) -> None:
    settings: MemorySettings = app.state.settings
    client = dapr_client(app)
    api_key = None
    if settings.embeddings == "openai" or settings.extraction_model:
        api_key = await client.find_secret(names.SECRET_OPENAI_API_KEY)
    embedder = make_embedder(
        settings.embeddings,
        base_url=settings.embeddings_base_url,
        model=settings.embeddings_model,
        api_key=api_key,
        dim=settings.embeddings_dim,
    )
    if isinstance(embedder, MiniLMEmbedder):
        await asyncio.to_thread(embedder.load)  # fail at start, not on the first request
    vectors = await asyncio.to_thread(open_index, engine, embedder.dim, MIGRATION_LOCK)
    if isinstance(vectors, Unindexed):
        log.warning("semantic search ranks in the service", extra={"reason": vectors.reason})
        search: dict[str, str | int] = {"ranking": "exact", "reason": vectors.reason}
    else:
        log.info("semantic search uses the pgvector HNSW index", extra={"dim": vectors.dim})
        search = {"ranking": "hnsw", "dim": vectors.dim}
    app.state.info = {**getattr(app.state, "info", {}), "semantic_search": search}
    kv = KVStore(engine, embedder, vectors)
    app.state.kv = kv
    app.state.memories = MemoryStore(kv, settings.merge_threshold)
    extractor: Extractor = HeuristicExtractor()
    if settings.extraction_model:
        from openai import OpenAI

        extractor = ModelExtractor(
            OpenAI(base_url=settings.extraction_base_url, api_key=api_key or "none"),
            settings.extraction_model,
        )
    app.state.extractor = extractor
    cache = ThreadItemsCache(
        settings.dapr_http_url, settings.dapr_api_token.get_secret_value(), settings.cache_ttl_s
    )
    app.state.thread_cache = cache
    app.state.threads = CachedThreadStore(app.state.threads, cache)
    app.state.sweeper = asyncio.create_task(_sweep(kv, settings.store_sweep_s))


async def stop(app: FastAPI) -> None:
    sweeper = getattr(app.state, "sweeper", None)
    if sweeper is not None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
    cache = getattr(app.state, "thread_cache", None)
    if cache is not None:
        cache.close()
