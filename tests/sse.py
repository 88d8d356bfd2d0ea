"""Server-sent events as the tests read them from the gateway's streams (one parser for the
integration, kind and local-model suites)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


def sse(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Frames as dicts: ``event``, ``data`` (JSON) and ``id``."""
    event: dict[str, Any] = {}
    for line in lines:
        if not line:
            if event:
                yield event
            event = {}
        elif line.startswith("event: "):
            event["event"] = line[7:]
        elif line.startswith("data: "):
            event["data"] = json.loads(line[6:])
        elif line.startswith("id: "):
            event["id"] = line[4:]
