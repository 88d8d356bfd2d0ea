"""How long and how much the local trace store keeps (runtime/tracestore.py): apart from the
store itself so that planning the mesh can check the setting without loading a web server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

RETENTION_S: Final = 24 * 3600
MAX_SPANS: Final = 1_000_000
MAX_SPANS_ENV: Final = "AGENTIA_TRACE_MAX_SPANS"


def max_spans(env: Mapping[str, str]) -> int:
    """``AGENTIA_TRACE_MAX_SPANS`` (default ``MAX_SPANS``); ValueError naming it when bad."""
    raw = env.get(MAX_SPANS_ENV, str(MAX_SPANS)).strip()
    if not raw.isdigit() or int(raw) < 1000:
        raise ValueError(f"{MAX_SPANS_ENV} must be a whole number, at least 1000: {raw!r}")
    return int(raw)
