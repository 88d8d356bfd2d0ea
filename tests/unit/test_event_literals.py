"""Run event kinds and run statuses are written once, in ``agentia.events``.

Everything else uses ``Kind`` and ``Status`` (and ``FINAL``, ``FINAL_KIND``, …): a kind or
status typed out again is how producers and consumers came to disagree (``tool.result``
carried different data from two producers; five sets of final statuses disagreed on
``timeout``). The check reads the source (no import runs):

- a string equal to a run event kind, anywhere outside the events module;
- a string equal to a run status where it is compared (``==``, ``!=``, ``in``), in a set, list,
  tuple or dict literal, passed as ``status=``, or the value of a ``"status"`` key.

A status passed as a positional argument is not seen (the callee's parameter is not known
from the source); those were replaced by hand. Words that merely look like a status
elsewhere (the drain's ``Literal["success", "retry", "drop"]`` answer, a workflow's custom
status) are left alone: a ``Literal[...]`` is read only when it lists three or more run
statuses (a copy of the status type).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentia.events import Kind, Status
from agentia.paths import repo_root

ROOT = repo_root()
FOLDERS = ["src/agentia", "services", "workflows", "console"]
EVENTS = ROOT / "src/agentia/events.py"
KINDS = {k.value for k in Kind}
STATUSES = {s.value for s in Status}


def _str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _literal_subscript_elts(tree: ast.AST) -> set[int]:
    """ids of constants inside a ``Literal[...]`` that lists fewer than three statuses."""
    spared: set[int] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Subscript) and getattr(node.value, "id", "") == "Literal"):
            continue
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if sum(_str(e) in STATUSES for e in elts) < 3:
            spared.update(id(e) for e in elts)
    return spared


def _statuses(nodes: list[ast.expr]) -> list[ast.expr]:
    return [n for n in nodes if _str(n) in STATUSES]


def _status_candidates(node: ast.AST) -> list[ast.expr]:
    """The constants of ``node`` that stand for a run status where they are written."""
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        if not any("status" in ast.unparse(o) for o in operands):
            return []  # ``frame.event == "error"`` is a stream's event name, not a status
        flat = [
            e
            for o in operands
            for e in (o.elts if isinstance(o, ast.Tuple | ast.Set | ast.List) else [o])
        ]
        return _statuses(flat)
    if isinstance(node, ast.Set | ast.List | ast.Tuple):
        found = _statuses(node.elts)
        return found if len(found) >= 2 else []  # a set of statuses, not one word among others
    if isinstance(node, ast.Dict):
        keys = _statuses([k for k in node.keys if k is not None])
        values = [v for k, v in zip(node.keys, node.values, strict=True) if _str(k) == "status"]
        return (keys if len(keys) >= 2 else []) + _statuses(values)
    if isinstance(node, ast.keyword) and node.arg == "status":
        return _statuses([node.value])
    return []


def literals(source: str) -> Iterator[tuple[int, str]]:
    """(line, string) of each kind or status typed out in ``source``."""
    tree = ast.parse(source)
    spared = _literal_subscript_elts(tree)
    for node in ast.walk(tree):
        text = _str(node)
        if text in KINDS:
            yield node.lineno, text  # type: ignore[attr-defined]
        for c in _status_candidates(node):
            if id(c) not in spared:
                yield c.lineno, str(_str(c))


def _sources() -> Iterator[Path]:
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path != EVENTS:
                yield path


def test_no_kind_or_status_is_typed_out_outside_the_events_module() -> None:
    found = sorted(
        {
            f"{path.relative_to(ROOT)}:{line}: {text!r}"
            for path in _sources()
            for line, text in literals(path.read_text())
        }
    )
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        'emit("run.started", {})',
        'if kind == "message.delta": pass',
        'FINAL = {"success", "error", "timeout"}',
        'if record["status"] in ("success", "error"): pass',
        'if load.status.get(r) == "success": pass',
        'MAP = {"success": 1, "error": 2}',
        'RunEvent(run_id="r", kind=k, status="running", seq=0)',
        'x = {"status": "interrupted"}',
        'S = Literal["pending", "running", "success", "error"]',
    ],
)
def test_a_typed_out_kind_or_status_is_caught(source: str) -> None:
    assert list(literals(source))


@pytest.mark.parametrize(
    "source",
    [
        'Answer = Literal["success", "retry", "drop"]',
        'return {"status": "SUCCESS"}',
        'emit(Kind.RUN_STARTED, {"agent_id": a})',
        'log.info("run %s ended with error", r)',
        'if frame.event == "error": pass',
        'keys = ("output", "error", "usage")',
        'x = {"error": why, "run_id": r}',
    ],
)
def test_other_strings_pass(source: str) -> None:
    assert list(literals(source)) == []
