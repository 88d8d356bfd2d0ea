"""Memory service: session reads/writes through Dapr vs. the same SQL run directly, and
semantic search latency at 10k and 100k memories through Dapr (whichever ranking the
service uses: the pgvector HNSW index, or the exact fallback; bench/memory_index.py puts
the two side by side).

Everything is measured in the same run on the same machine: the baseline for a session
read or write is the SQL the memory service itself runs, sent straight to PostgreSQL with
psycopg (no HTTP, no sidecars). Semantic search goes through Dapr to the memory service,
which embeds the query (offline all-MiniLM-L6-v2) and ranks the prefiltered vectors.
The 10k/100k memories are written straight into the table (random unit vectors, since
only the ranking cost matters here; moved into the vector column by the service's own
backfill when the server has pgvector) and removed afterwards.

    .venv/bin/python bench/memory.py [--ops 300] [--searches 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import psycopg

from agentia import names
from agentia.paths import agentia_home, repo_root
from agentia_memory.db import make_engine
from agentia_memory.vectors import backfill, column_dim

sys.path.insert(0, str(repo_root()))
from bench.invoke_overhead import start_services

RESULTS = repo_root() / "bench" / "results"
SIZES = (10_000, 100_000)


def stats(samples_s: list[float]) -> dict[str, float]:
    ms = np.array(samples_s) * 1000
    return {
        "n": float(len(ms)),
        "mean_ms": float(ms.mean()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def timed(fn: Callable[[], Any], n: int) -> dict[str, float]:
    for _ in range(min(10, n)):  # warm-up: connections, caches, code paths
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return stats(samples)


def postgres_url() -> str:
    secrets = json.loads((agentia_home() / "secrets.json").read_text())
    return str(secrets[names.SECRET_POSTGRES_URL])


def session_bench(http: httpx.Client, base: str, pg: psycopg.Connection, n: int) -> dict[str, Any]:
    tid = f"bench-{uuid.uuid4().hex[:10]}"
    seed = [{"role": "user", "content": f"message {i} " + "lorem ipsum " * 10} for i in range(20)]
    http.post(f"{base}/internal/threads", json={"thread_id": tid}).raise_for_status()
    http.post(f"{base}/internal/threads/{tid}/items", json={"items": seed}).raise_for_status()

    def dapr_read() -> None:
        http.get(f"{base}/internal/threads/{tid}/items", params={"limit": 20}).raise_for_status()

    def sql_read() -> None:
        with pg.cursor() as cur:
            cur.execute("SELECT version FROM threads WHERE thread_id = %s", (tid,))
            cur.fetchone()
            cur.execute(
                "SELECT data FROM thread_items WHERE thread_id = %s ORDER BY position DESC "
                "LIMIT 20",
                (tid,),
            )
            cur.fetchall()

    item = {"role": "user", "content": "one more message " + "lorem ipsum " * 10}

    def dapr_write() -> None:
        http.post(f"{base}/internal/threads/{tid}/items", json={"items": [item]}).raise_for_status()

    sql_tid = f"{tid}-sql"
    with pg.cursor() as cur:
        cur.execute(
            "INSERT INTO threads (thread_id, metadata, version, item_count, created_at, "
            "updated_at) VALUES (%s, '{}', 0, 0, now(), now())",
            (sql_tid,),
        )

    def sql_write() -> None:
        # What ThreadStore.add_items does: compare-and-set the version, then insert the item.
        with pg.transaction(), pg.cursor() as cur:
            cur.execute("SELECT version, item_count FROM threads WHERE thread_id = %s", (sql_tid,))
            version, count = cur.fetchone()  # type: ignore[misc]
            cur.execute(
                "UPDATE threads SET version = %s, item_count = %s, updated_at = now() "
                "WHERE thread_id = %s AND version = %s",
                (version + 1, count + 1, sql_tid, version),
            )
            cur.execute(
                "INSERT INTO thread_items (thread_id, position, data, created_at) "
                "VALUES (%s, %s, %s, now())",
                (sql_tid, count, json.dumps(item)),
            )

    out = {
        "read_dapr": timed(dapr_read, n),
        "read_sql": timed(sql_read, n),
        "write_dapr": timed(dapr_write, n),
        "write_sql": timed(sql_write, n),
    }
    with pg.cursor() as cur:
        cur.execute("DELETE FROM thread_items WHERE thread_id IN (%s, %s)", (tid, sql_tid))
        cur.execute("DELETE FROM threads WHERE thread_id IN (%s, %s)", (tid, sql_tid))
    return out


def fill(pg: psycopg.Connection, ns: list[str], count: int) -> None:
    rng = np.random.default_rng(7)
    path = "/".join(ns)
    now = datetime.now(UTC)
    ns_json = json.dumps(ns)
    with (
        pg.cursor() as cur,
        cur.copy(
            "COPY store_items (ns_path, key, namespace, depth, value, embedding, created_at, "
            "updated_at) FROM STDIN"
        ) as copy,
    ):
        for start in range(0, count, 5000):
            block = rng.standard_normal((min(5000, count - start), 384)).astype("<f4")
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            for i, vec in enumerate(block, start):
                value = {"kind": "semantic", "content": f"synthetic memory {i}", "slot": None}
                copy.write_row(
                    (path, f"m{i}", ns_json, len(ns), json.dumps(value), vec.tobytes(), now, now)
                )


def index_new_rows() -> None:
    """Vectors written straight into the table go into the index as the service's start-up
    backfill moves them (no-op without pgvector)."""
    engine = make_engine(postgres_url())
    try:
        with engine.begin() as c:
            if column_dim(c) is not None:
                backfill(c, 384, lambda m: print(f"  {m}", flush=True))
    finally:
        engine.dispose()


def search_bench(
    http: httpx.Client, base: str, pg: psycopg.Connection, n: int
) -> dict[str, dict[str, float]]:
    run = uuid.uuid4().hex[:8]
    out: dict[str, dict[str, float]] = {}
    try:
        for size in SIZES:
            ns = ["bench", run, f"n{size}"]
            print(f"• writing {size} memories straight into PostgreSQL", flush=True)
            fill(pg, ns, size)
            index_new_rows()
            body = {"namespace_prefix": ns, "query": "what does the user like to eat?", "limit": 10}

            def one(body: dict[str, Any] = body, size: int = size) -> None:
                resp = http.post(f"{base}/internal/memories/search", json=body)
                resp.raise_for_status()
                assert len(resp.json()["memories"]) == 10, size

            print(f"• {n} semantic searches over {size} memories", flush=True)
            out[f"search_{size}"] = timed(one, n)
    finally:
        with pg.cursor() as cur:
            cur.execute("DELETE FROM store_items WHERE ns_path LIKE %s", (f"bench/{run}/%",))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--ops", type=int, default=300, help="session reads/writes per path")
    parser.add_argument("--searches", type=int, default=20, help="searches per size")
    args = parser.parse_args()
    print("• starting infrastructure, control plane, memory, agent-runner", flush=True)
    # Calls go through agent-runner's sidecar, memory's main caller: memory answers only the
    # gateway, agent-runner and tool-mcp (agentia_tools.access).
    _, plan = start_services((names.MEMORY, names.AGENT_RUNNER), timeout=90)
    caller = names.PORTS[names.AGENT_RUNNER]
    base = f"http://127.0.0.1:{caller.dapr_http}/v1.0/invoke/{names.MEMORY}/method"
    headers = {"dapr-api-token": plan.tokens.dapr_api_token}
    with (
        httpx.Client(headers=headers, timeout=120) as http,
        psycopg.connect(postgres_url(), autocommit=True) as pg,
    ):
        print(f"• session reads and writes, {args.ops} each, Dapr and direct SQL", flush=True)
        results: dict[str, Any] = session_bench(http, base, pg, args.ops)
        results.update(search_bench(http, base, pg, args.searches))
        ranking = http.get(f"{base}/internal/info").json().get("semantic_search")
    report(results, args, ranking)


def report(r: dict[str, Any], args: argparse.Namespace, ranking: Any) -> None:
    rows = [
        ("session read, 20 items, direct SQL (baseline)", "read_sql"),
        ("session read, 20 items, through Dapr (Redis cache)", "read_dapr"),
        ("session write, 1 item, direct SQL (baseline)", "write_sql"),
        ("session write, 1 item, through Dapr", "write_dapr"),
        *((f"semantic search, {s // 1000}k memories, Dapr", f"search_{s}") for s in SIZES),
    ]
    print(f"\n{'operation':50} {'mean ms':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
    for label, key in rows:
        s = r[key]
        print(
            f"{label:50} {s['mean_ms']:8.2f} {s['p50_ms']:8.2f} {s['p90_ms']:8.2f} "
            f"{s['p99_ms']:8.2f}"
        )
    print(f"semantic search ranking: {ranking}")
    for op in ("read", "write"):
        added = r[f"{op}_dapr"]["p50_ms"] - r[f"{op}_sql"]["p50_ms"]
        print(f"{op}: the service and two sidecars add {added:.2f} ms at p50")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "memory.json"
    payload = {
        "cores": os.cpu_count(),
        "ops": args.ops,
        "searches": args.searches,
        "vector_search": ranking,
        "embeddings": "all-MiniLM-L6-v2 int8 ONNX (offline)",
        "results": r,
    }
    out.write_text(json.dumps(payload, indent=1))
    print(f"written: {out.relative_to(repo_root())}")


if __name__ == "__main__":
    main()
