"""The store's rules, checked the same way for every caller (so every caller gets the
same 422 reasons), and filters evaluated in Python. No SQL, no Dapr.

- a namespace is 1..10 labels of 1..64 characters from ``[A-Za-z0-9_.@:-]`` ("/" is not
  allowed: it joins the labels in ``ns_path``, so a namespace prefix is one indexed LIKE);
- a key is 1..256 characters, none of them a control character;
- a value is a JSON object of at most 64 KiB serialised;
- a filter is ``{"field": value}`` (equality) or ``{"field": {"$op": value}}`` with ``$eq``,
  ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``; ``field`` may be a dotted path into nested
  objects. Order comparisons take a number or a string and match values of the same type.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agentia.contracts.memory_store import MAX_DEPTH, MAX_KEY

LABEL = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}$")
MAX_VALUE_BYTES = 64 * 1024
MIN_TTL_MINUTES = 1 / 60  # one second: shorter ones underflow PostgreSQL's intervals
FILTER_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
NS_SEP = "/"


class InvalidInput(ValueError):
    """Input that breaks a rule; the message names the field and the rule."""


class TooLarge(InvalidInput):
    """A value over the size limit."""


class NotFound(LookupError):
    """No such item (or it expired)."""


def check_namespace(ns: list[str], field: str = "namespace", allow_empty: bool = False) -> None:
    if not ns and not allow_empty:
        raise InvalidInput(f"{field}: needs at least one label")
    if len(ns) > MAX_DEPTH:
        raise InvalidInput(f"{field}: {len(ns)} labels, at most {MAX_DEPTH} allowed")
    for i, label in enumerate(ns):
        if not isinstance(label, str) or not LABEL.match(label):
            raise InvalidInput(
                f"{field}[{i}]: label {str(label)[:70]!r} must be 1..64 characters of "
                "[A-Za-z0-9_.@:-]"
            )


def check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY:
        raise InvalidInput(f"key: must be 1..{MAX_KEY} characters, got {len(key)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidInput("key: control characters are not allowed")


def check_value(value: dict[str, Any]) -> None:
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_VALUE_BYTES:
        raise TooLarge(f"value: {size} bytes serialised, at most {MAX_VALUE_BYTES} allowed")


def ns_path(ns: list[str]) -> str:
    return NS_SEP.join(ns)


@dataclass(frozen=True)
class Condition:
    """One filter condition on a (dotted) field of the value."""

    path: tuple[str, ...]
    op: str
    value: Any


def parse_filter(spec: dict[str, Any] | None) -> list[Condition]:
    """Check a filter and turn it into conditions (InvalidInput says what is wrong)."""
    out: list[Condition] = []
    for field, cond in (spec or {}).items():
        parts = tuple(field.split("."))
        if not field or len(field) > 256 or not all(parts):
            raise InvalidInput(f"filter: field {field[:60]!r} is not a valid (dotted) field name")
        ops = cond if isinstance(cond, dict) and any(k.startswith("$") for k in cond) else None
        if ops is None:
            out.append(Condition(parts, "$eq", cond))
            continue
        for op, operand in ops.items():
            if op not in FILTER_OPS:
                raise InvalidInput(f"filter.{field}: unknown operator {op!r} ({FILTER_OPS})")
            if op not in ("$eq", "$ne") and (
                isinstance(operand, bool) or not isinstance(operand, int | float | str)
            ):
                raise InvalidInput(f"filter.{field}.{op}: needs a number or a string")
            out.append(Condition(parts, op, operand))
    return out


def _lookup(value: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _same_kind(a: Any, b: Any) -> bool:
    number = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, number) and isinstance(b, number)) or (
        isinstance(a, str) and isinstance(b, str)
    )


def _json_eq(a: Any, b: Any) -> bool:
    # JSONB equality: 1 equals 1.0, but true never equals 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _same_kind(a, b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def matches(value: dict[str, Any], conditions: list[Condition]) -> bool:
    """The filter's meaning, in Python (the SQL in :func:`_sql_condition` does the same)."""
    for c in conditions:
        found, v = _lookup(value, c.path)
        if c.op == "$eq":
            ok = found and _json_eq(v, c.value)
        elif c.op == "$ne":
            ok = not (found and _json_eq(v, c.value))
        else:
            ok = found and _same_kind(v, c.value) and _compare(v, c.op, c.value)
        if not ok:
            return False
    return True


def _compare(a: Any, op: str, b: Any) -> bool:
    return bool({"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op])


def _text_at(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in _text_at(v)]
    if value is None:
        return []
    return [json.dumps(value, ensure_ascii=False)]


def index_text(value: dict[str, Any], index: list[str] | None) -> str | None:
    """The text embedded for an item: the named (dotted) fields, or every top-level field."""
    if index is None:
        parts = [t for v in value.values() for t in _text_at(v)]
    else:
        parts = []
        for path in index:
            found, v = _lookup(value, tuple(path.split(".")))
            if found:
                parts.extend(_text_at(v))
    text = "\n".join(p for p in parts if p.strip())
    return text or None
