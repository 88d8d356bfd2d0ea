"""The pgvector index of the store: an HNSW index over a ``vector`` column kept beside the
``embedding`` bytes. No Dapr here.

The bytes stay the source of truth (every PostgreSQL can hold them, and the NumPy fallback
ranks them); ``embedding_vec`` is derived from them and can always be rebuilt. At start-up,
under the migration lock, :func:`prepare` finds out whether the server has pgvector, adds
the column (of the embedder's dimension), fills it from the bytes of rows that have none
yet (an existing store moves over without losing a memory) and builds the index.
Vectors are L2-normalised, so the inner product is the cosine: the index uses
``vector_ip_ops`` and a search orders by ``embedding_vec <#> q`` (the negated dot product).
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

COLUMN = "embedding_vec"
INDEX = "ix_store_items_embedding_hnsw"
BACKFILL_BATCH = 10_000
# Candidates the index visits per search, and how many tuples an iterative scan may read
# before it gives up (pgvector's defaults are 40 and 20,000): enough for recall@10 >= 0.95
# on real embeddings; bench/memory_index.py measures both.
EF_SEARCH = 100
MAX_SCAN_TUPLES = 40_000
Progress = Callable[[str], None]


def literal(vector: np.ndarray) -> str:
    """pgvector's text form of a vector: ``[0.1,0.2,...]``."""
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(vector, dtype=np.float32)) + "]"


@dataclass(frozen=True)
class VectorIndex:
    """pgvector is on and ``store_items.embedding_vec`` is a ``vector(dim)`` with an HNSW
    index: searches rank in SQL, through the index."""

    dim: int

    def configure(self, c: Connection, want: int) -> None:
        """Search settings for this transaction. An iterative scan keeps reading the index
        until ``want`` rows pass the WHERE clause, so a narrow namespace or a filter does
        not leave a page short (pgvector >= 0.8; results come in relaxed order and are
        re-sorted by the caller)."""
        ef = max(EF_SEARCH, want)
        c.execute(text(f"SET LOCAL hnsw.ef_search = {int(ef)}"))
        c.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
        c.execute(text(f"SET LOCAL hnsw.max_scan_tuples = {MAX_SCAN_TUPLES}"))

    def exact(self, c: Connection) -> None:
        """No index scans for the rest of this transaction: ``ORDER BY`` the distance is
        then an exact sort of the rows the WHERE clause leaves (bitmap scans still serve
        the namespace index)."""
        c.execute(text("SET LOCAL enable_indexscan = off"))

    def write(self, c: Connection, ns_path: str, key: str, vector: np.ndarray | None) -> None:
        """Set (or clear) the indexed vector of one item, in the caller's transaction."""
        c.execute(
            text(
                "UPDATE store_items SET embedding_vec = CAST(:v AS vector) "
                "WHERE ns_path = :p AND key = :k"
            ),
            {"v": None if vector is None else literal(vector), "p": ns_path, "k": key},
        )


@dataclass(frozen=True)
class Unindexed:
    """Why searches rank in the service instead (said once at start-up and in /healthz)."""

    reason: str


def column_dim(c: Connection) -> int | None:
    """The declared dimension of ``embedding_vec``, 0 if it has none, None if absent."""
    row = c.execute(
        text(
            "SELECT a.atttypmod FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid "
            "WHERE t.relname = 'store_items' AND a.attname = :col AND NOT a.attisdropped "
            "AND pg_table_is_visible(t.oid)"
        ),
        {"col": COLUMN},
    ).first()
    return None if row is None else max(int(row[0]), 0)


def _enable(c: Connection) -> str | None:
    """Make sure the extension is there; the reason it cannot be, or None."""
    if c.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'vector'")).first():
        return None
    version = c.execute(text("SHOW server_version")).scalar_one()
    if not c.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first():
        return f"pgvector is not installed in this PostgreSQL ({version})"
    c.execute(text("SAVEPOINT vector_ext"))
    try:
        c.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except Exception as exc:  # no privilege: a superuser has to enable it
        c.execute(text("ROLLBACK TO SAVEPOINT vector_ext"))
        first = str(exc).splitlines()[0]
        return f"pgvector is installed but not enabled, and this role may not: {first}"
    return None


def prepare(c: Connection, dim: int, progress: Progress | None = None) -> VectorIndex | Unindexed:
    """Column, backfill and index, in the caller's (migration-locked) transaction."""
    say = progress or (lambda m: log.info(m))
    why = _enable(c)
    if why:
        return Unindexed(why)
    have = column_dim(c)
    if have is not None and have != dim:
        # Another embedder wrote these: rebuild from the bytes of this dimension.
        say(f"memory index: vectors were {have}-dimensional, now {dim}: rebuilding")
        c.execute(text("DROP INDEX IF EXISTS ix_store_items_embedding_hnsw"))
        c.execute(text("ALTER TABLE store_items DROP COLUMN embedding_vec"))
        have = None
    if have is None:
        c.execute(text(f"ALTER TABLE store_items ADD COLUMN embedding_vec vector({int(dim)})"))
    filled = backfill(c, dim, say)
    exists = c.execute(text("SELECT to_regclass(:i)"), {"i": INDEX}).scalar_one()
    if exists is None:
        t = time.monotonic()
        say("memory index: building the HNSW index")
        c.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        c.execute(
            text(
                "CREATE INDEX ix_store_items_embedding_hnsw ON store_items "
                "USING hnsw (embedding_vec vector_ip_ops)"
            )
        )
        say(f"memory index: HNSW index built in {time.monotonic() - t:.1f} s")
    elif filled:
        say(f"memory index: {filled} vectors added to the existing index")
    if filled:
        # Fresh statistics, so the planner weighs the index against the namespace prefilter
        # with the table's real size rather than guesses.
        c.execute(text("ANALYZE store_items"))
    return VectorIndex(dim)


def backfill(c: Connection, dim: int, say: Progress) -> int:
    """Fill ``embedding_vec`` from the bytes of every row of this dimension lacking it:
    a batch at a time in key order, each batch sent with one binary COPY into a temporary
    table and written with one joined UPDATE (a million memories take minutes, not hours)."""
    pending = c.execute(
        text(
            "SELECT count(*) FROM store_items WHERE embedding_vec IS NULL "
            "AND embedding IS NOT NULL AND length(embedding) = :n"
        ),
        {"n": dim * 4},
    ).scalar_one()
    if not pending:
        return 0
    say(f"memory index: moving {pending} stored vectors into the vector column")
    c.execute(
        text(f"CREATE TEMP TABLE vec_fill (p text, k text, v vector({int(dim)})) ON COMMIT DROP")
    )
    t, total, last = time.monotonic(), 0, ("", "")
    while True:
        rows = c.execute(
            text(
                "SELECT ns_path, key, embedding FROM store_items WHERE (ns_path, key) > (:p, :k) "
                "AND embedding_vec IS NULL AND embedding IS NOT NULL AND length(embedding) = :n "
                "ORDER BY ns_path, key LIMIT :b"
            ),
            {"p": last[0], "k": last[1], "n": dim * 4, "b": BACKFILL_BATCH},
        ).all()
        if not rows:
            break
        last = (rows[-1].ns_path, rows[-1].key)
        matrix = np.frombuffer(b"".join(r.embedding for r in rows), dtype="<f4").reshape(-1, dim)
        copy_rows(c, "vec_fill (p, k, v)", [(r.ns_path, r.key) for r in rows], matrix)
        c.execute(
            text(
                "UPDATE store_items s SET embedding_vec = f.v FROM vec_fill f "
                "WHERE s.ns_path = f.p AND s.key = f.k"
            )
        )
        c.execute(text("TRUNCATE vec_fill"))
        total += len(rows)
        if total % (BACKFILL_BATCH * 10) == 0:
            say(f"memory index: {total}/{pending} vectors moved ({time.monotonic() - t:.0f} s)")
    return total


def copy_rows(c: Connection, target: str, keys: list[tuple[str, ...]], vectors: np.ndarray) -> None:
    """``COPY target FROM STDIN (FORMAT BINARY)``: each row is its text ``keys`` then one
    vector. Binary, so no float is ever printed and parsed."""
    head = struct.pack(">h", len(keys[0]) + 1) if keys else b""
    vec_head = struct.pack(">ihh", 4 + 4 * vectors.shape[1], vectors.shape[1], 0)
    body = np.asarray(vectors, dtype=">f4")
    out = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0)]
    for row, vec in zip(keys, body, strict=True):
        out.append(head)
        for field in row:
            raw = field if isinstance(field, bytes) else field.encode()
            out.append(struct.pack(">i", len(raw)) + raw)
        out.append(vec_head + vec.tobytes())
    out.append(struct.pack(">h", -1))
    raw_conn = c.connection.driver_connection
    assert raw_conn is not None
    with raw_conn.cursor() as cur, cur.copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as cp:
        cp.write(b"".join(out))


def open_index(engine: Engine, dim: int, lock: int) -> VectorIndex | Unindexed:
    """:func:`prepare` under the migration advisory lock, so replicas take turns."""
    with engine.begin() as c:
        c.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
        return prepare(c, dim)
