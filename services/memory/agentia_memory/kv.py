"""The key-value store: JSON items by namespace and key, with TTL, filters, paging and a
semantic query. No Dapr here; sync code (FastAPI runs the routes in its thread pool).

The rules every input is checked against are in ``kv_rules``.

Vectors: items are embedded when put (``index``: None = the whole value, a list of field
paths, or False = not searchable by meaning) and ranked by cosine similarity: in SQL through
pgvector's HNSW index where the server has it (``vectors``), else exactly, in Python, over
the rows the SQL prefilter (namespace, filter, expiry) leaves; see docs/memory.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlmodel import SQLModel

from agentia.contracts.memory_store import MAX_TTL_MINUTES
from agentia_memory.embeddings import Embedder, from_bytes, to_bytes
from agentia_memory.kv_rules import (
    MIN_TTL_MINUTES,
    NS_SEP,
    Condition,
    InvalidInput,
    NotFound,
    check_key,
    check_namespace,
    check_value,
    index_text,
    ns_path,
    parse_filter,
)
from agentia_memory.tables import StoreItem
from agentia_memory.vectors import COLUMN, Unindexed, VectorIndex, literal

T = SQLModel.metadata.tables[str(StoreItem.__tablename__)]


def _sql_condition(c: Condition) -> ColumnElement[bool]:
    doc = T.c.value
    field = doc[c.path[0]] if len(c.path) == 1 else doc[c.path]
    operand = bindparam(None, c.value, type_=JSONB)
    if c.op == "$eq":
        return field == operand
    if c.op == "$ne":
        return field.is_distinct_from(operand)
    same_type = func.jsonb_typeof(field) == func.jsonb_typeof(operand)
    compare = {"$gt": field > operand, "$gte": field >= operand}.get(c.op)
    if compare is None:
        compare = field < operand if c.op == "$lt" else field <= operand
    return and_(same_type, compare)


@dataclass
class Item:
    namespace: list[str]
    key: str
    value: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    score: float | None = None

    def as_dict(self, with_score: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "namespace": self.namespace,
            "key": self.key,
            "value": self.value,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
        if with_score:
            out["score"] = self.score
        return out


def _now() -> datetime:
    return datetime.now(UTC)


def _live(now: datetime) -> ColumnElement[bool]:
    return or_(T.c.expires_at.is_(None), T.c.expires_at > now)


def _prefix(prefix: list[str] | None, exact: bool = False) -> ColumnElement[bool]:
    if not prefix:
        return true()
    path = ns_path(prefix)
    if exact:
        return T.c.ns_path == path
    return or_(T.c.ns_path == path, T.c.ns_path.startswith(path + NS_SEP, autoescape=True))


def _item(row: Any, score: float | None = None) -> Item:
    return Item(
        list(row.namespace), row.key, dict(row.value), row.created_at, row.updated_at, score
    )


_COLUMNS = (T.c.namespace, T.c.key, T.c.value, T.c.created_at, T.c.updated_at, T.c.ttl_minutes)


class KVStore:
    """Store operations on one database; ``embedder`` embeds values and queries;
    ``vectors`` is the pgvector index when the server has one (see :mod:`vectors`)."""

    def __init__(
        self, engine: Engine, embedder: Embedder, vectors: VectorIndex | Unindexed | None = None
    ) -> None:
        self.engine = engine
        self.embedder = embedder
        self.vectors = vectors if isinstance(vectors, VectorIndex) else None
        self.unindexed = vectors.reason if isinstance(vectors, Unindexed) else None

    def embed_one(self, text: str) -> np.ndarray:
        return np.asarray(self.embedder.embed([text])[0])

    def put(
        self,
        namespace: list[str],
        key: str,
        value: dict[str, Any],
        *,
        ttl: float | None = None,
        index: list[str] | bool | None = None,
        conn: Connection | None = None,
    ) -> None:
        """Insert or replace an item (``created_at`` survives a replace)."""
        check_namespace(namespace)
        check_key(key)
        check_value(value)
        if ttl is not None and not MIN_TTL_MINUTES <= ttl <= MAX_TTL_MINUTES:
            raise InvalidInput(f"ttl: minutes must be in [{MIN_TTL_MINUTES}, {MAX_TTL_MINUTES}]")
        text = (
            None
            if index is False
            else index_text(value, index if isinstance(index, list) else None)
        )
        embedded = self.embed_one(text) if text else None
        vector = None if embedded is None else to_bytes(embedded)
        now = _now()
        row = {
            "ns_path": ns_path(namespace),
            "key": key,
            "namespace": namespace,
            "depth": len(namespace),
            "value": value,
            "embedding": vector,
            "ttl_minutes": ttl,
            "expires_at": now + timedelta(minutes=ttl) if ttl else None,
            "created_at": now,
            "updated_at": now,
        }
        stmt = insert(T).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[T.c.ns_path, T.c.key],
            set_={k: stmt.excluded[k] for k in row if k not in ("ns_path", "key", "created_at")},
        )
        if conn is not None:
            self._write(conn, stmt, row, embedded)
            return
        with self.engine.begin() as c:
            self._write(c, stmt, row, embedded)

    def _write(self, c: Connection, stmt: Any, row: dict[str, Any], vec: np.ndarray | None) -> None:
        c.execute(stmt)
        if self.vectors is not None:  # always: a replaced item may have lost its vector
            self.vectors.write(c, row["ns_path"], row["key"], vec)

    def get(self, namespace: list[str], key: str, refresh_ttl: bool = True) -> Item:
        check_namespace(namespace)
        check_key(key)
        now = _now()
        with self.engine.begin() as c:
            row = c.execute(
                select(*_COLUMNS).where(
                    T.c.ns_path == ns_path(namespace), T.c.key == key, _live(now)
                )
            ).first()
            if row is None:
                raise NotFound(f"no item '{key}' in namespace {namespace}")
            if refresh_ttl and row.ttl_minutes:
                self._refresh(c, [(ns_path(namespace), key)], now)
            return _item(row)

    def delete(self, namespace: list[str], key: str, conn: Connection | None = None) -> None:
        check_namespace(namespace)
        check_key(key)
        stmt = delete(T).where(T.c.ns_path == ns_path(namespace), T.c.key == key)
        if conn is not None:
            gone = conn.execute(stmt).rowcount
        else:
            with self.engine.begin() as c:
                gone = c.execute(stmt).rowcount
        if gone == 0:
            raise NotFound(f"no item '{key}' in namespace {namespace}")

    @staticmethod
    def _refresh(c: Connection, keys: list[tuple[str, str]], now: datetime) -> None:
        # A sliding TTL: reading an item pushes its expiry out by its own ttl.
        minutes = T.c.ttl_minutes * literal_column("interval '1 minute'")
        c.execute(
            update(T)
            .where(tuple_(T.c.ns_path, T.c.key).in_(keys), T.c.ttl_minutes.is_not(None))
            .values(expires_at=bindparam(None, now, type_=T.c.expires_at.type) + minutes)
        )

    def search(
        self,
        namespace_prefix: list[str] | None = None,
        *,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        query: str | None = None,
        refresh_ttl: bool = True,
        exact_namespace: bool = False,
        conn: Connection | None = None,
    ) -> list[Item]:
        """Items under a namespace prefix that pass the filter: newest first, or most similar
        to ``query`` first (items without a vector follow, with score None)."""
        check_namespace(namespace_prefix or [], "namespace_prefix", allow_empty=True)
        conditions = parse_filter(filter)
        now = _now()
        where = and_(
            _prefix(namespace_prefix, exact_namespace),
            _live(now),
            *[_sql_condition(c) for c in conditions],
        )
        if conn is not None:
            return self._search(conn, where, limit, offset, query, refresh_ttl, now)
        with self.engine.begin() as c:
            return self._search(c, where, limit, offset, query, refresh_ttl, now)

    def _search(
        self,
        c: Connection,
        where: ColumnElement[bool],
        limit: int,
        offset: int,
        query: str | None,
        refresh_ttl: bool,
        now: datetime,
    ) -> list[Item]:
        newest = (T.c.updated_at.desc(), T.c.ns_path, T.c.key)
        if not query:
            rows = c.execute(
                select(*_COLUMNS).where(where).order_by(*newest).limit(limit).offset(offset)
            ).all()
            items = [_item(r) for r in rows]
            ttl_keys = [(ns_path(r.namespace), r.key) for r in rows if r.ttl_minutes]
        else:
            items, ttl_keys = self._ranked(c, where, limit, offset, query)
        if refresh_ttl and ttl_keys:
            self._refresh(c, ttl_keys, now)
        return items

    def _exact(
        self, c: Connection, where: ColumnElement[bool], want: int, query: str
    ) -> list[tuple[tuple[str, str], float | None]]:
        """Exact cosine ranking in Python over the prefiltered vectors (the fallback when
        pgvector is absent): read (path, key, vector), score with one matrix product."""
        # In key order, so the stable sort breaks ties the way the indexed path does.
        candidates = c.execute(
            select(T.c.ns_path, T.c.key, T.c.embedding)
            .where(where, T.c.embedding.is_not(None))
            .order_by(T.c.ns_path, T.c.key)
        ).all()
        if not candidates:
            return []
        q = self.embed_one(query)
        scores = from_bytes([r.embedding for r in candidates], q.shape[0]) @ q
        top = np.argsort(-scores, kind="stable")[:want]
        return [((candidates[i].ns_path, candidates[i].key), float(scores[i])) for i in top]

    def _indexed(
        self, c: Connection, vectors: VectorIndex, where: ColumnElement[bool], want: int, query: str
    ) -> list[tuple[tuple[str, str], float | None]]:
        """Approximate ranking through the HNSW index, in SQL. The score is the dot product
        (``<#>`` is its negation), the same number the exact path gives."""
        q = literal(self.embed_one(query))
        vec: ColumnElement[Any] = literal_column(COLUMN)
        distance = vec.op("<#>")(text("CAST(:q AS vector)").bindparams(q=q))
        ranked_query = (
            select(T.c.ns_path, T.c.key, distance.label("d"))
            .where(where, vec.is_not(None))
            .order_by(distance)
            .limit(want)
        )
        vectors.configure(c, want)
        rows = c.execute(ranked_query).all()
        if len(rows) < want:
            # Short: fewer rows pass the WHERE clause than asked for, or the iterative scan
            # gave up on a very narrow one. Either way, rank those rows exactly in SQL.
            vectors.exact(c)
            rows = c.execute(ranked_query).all()
        # An iterative scan returns rows in relaxed order: sort them exactly.
        ranked = sorted(rows, key=lambda r: (float(r.d), r.ns_path, r.key))
        return [((r.ns_path, r.key), -float(r.d)) for r in ranked]

    def _ranked(
        self, c: Connection, where: ColumnElement[bool], limit: int, offset: int, query: str
    ) -> tuple[list[Item], list[tuple[str, str]]]:
        """The page of items most similar to ``query``: rank (through the index, or exactly
        in Python), then read the full rows of the page only."""
        want = offset + limit
        page: list[tuple[tuple[str, str], float | None]]
        if self.vectors is not None:
            page = self._indexed(c, self.vectors, where, want, query)
            unranked = literal_column(COLUMN).is_(None)
        else:
            page = self._exact(c, where, want, query)
            unranked = T.c.embedding.is_(None)
        if len(page) < want:
            rest = c.execute(
                select(T.c.ns_path, T.c.key)
                .where(where, unranked)
                .order_by(T.c.updated_at.desc(), T.c.ns_path, T.c.key)
                .limit(want - len(page))
            ).all()
            page.extend(((r.ns_path, r.key), None) for r in rest)
        page = page[offset:want]
        if not page:
            return [], []
        keys = [k for k, _ in page]
        rows = {
            (ns_path(r.namespace), r.key): r
            for r in c.execute(
                select(*_COLUMNS).where(tuple_(T.c.ns_path, T.c.key).in_(keys))
            ).all()
        }
        items = [_item(rows[k], s) for k, s in page if k in rows]
        return items, [k for k in keys if k in rows and rows[k].ttl_minutes]

    def list_namespaces(
        self,
        *,
        prefix: list[str] | None = None,
        suffix: list[str] | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[list[str]]:
        """Distinct namespaces (cut to ``max_depth`` labels), sorted, one page."""
        check_namespace(prefix or [], "prefix", allow_empty=True)
        check_namespace(suffix or [], "suffix", allow_empty=True)
        with self.engine.connect() as c:
            rows = c.execute(
                select(T.c.namespace).distinct().where(_prefix(prefix), _live(_now()))
            ).all()
        found: set[tuple[str, ...]] = set()
        for (ns,) in rows:
            if suffix and tuple(ns[-len(suffix) :]) != tuple(suffix):
                continue
            found.add(tuple(ns[:max_depth] if max_depth else ns))
        return [list(ns) for ns in sorted(found)[offset : offset + limit]]

    def sweep_expired(self, batch: int = 1000) -> int:
        """Delete expired items (a batch at a time so a big sweep never holds long locks)."""
        total = 0
        while True:
            with self.engine.begin() as c:
                doomed = select(T.c.ns_path, T.c.key).where(T.c.expires_at <= _now())
                doomed = doomed.limit(batch)
                n = c.execute(delete(T).where(tuple_(T.c.ns_path, T.c.key).in_(doomed))).rowcount
            total += n
            if n < batch:
                return total

    def count(self, namespace_prefix: list[str] | None = None) -> int:
        with self.engine.connect() as c:
            return int(
                c.execute(
                    select(func.count()).select_from(T).where(_prefix(namespace_prefix))
                ).scalar_one()
            )
