"""Clients that stream runs through the gateway (SSE) and reconnect with Last-Event-ID, for
the experiments that break the streaming path. Each records every event it was sent.

The local mesh's gateway is the default; the kind experiments hand in the cluster's
(``kind_load.gateway``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from agentia import names
from agentia.events import FINAL_KINDS
from agentia.paths import agentia_home
from agentia_tools.runtime.local_keys import read_local_key

GATEWAY = f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"
Gateway = Callable[[], httpx.Client]


def local_gateway() -> httpx.Client:
    """A client of the local mesh's gateway with this machine's key."""
    key = read_local_key(agentia_home()) or ""
    return httpx.Client(base_url=GATEWAY, headers={"x-api-key": key}, timeout=30)


@dataclass
class Stream:
    """One client: the run it started and the events (seq, kind) it received, in order."""

    text: str
    run_id: str | None = None
    events: list[tuple[int, str]] = field(default_factory=list)
    reconnects: int = 0
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1][1] in FINAL_KINDS


CURRENT: list[Stream] = []


def _read(resp: httpx.Response, stream: Stream) -> None:
    for line in resp.iter_lines():
        if line.startswith("data: "):
            data = json.loads(line[6:])
            if isinstance(data, dict) and "seq" in data and "kind" in data:
                stream.events.append((int(data["seq"]), str(data["kind"])))
                if data["kind"] in FINAL_KINDS:
                    return
        elif line.startswith("event: metadata"):
            continue


def _client(stream: Stream, deadline_s: float, gateway: Gateway) -> None:
    body = {
        "assistant_id": "assistant",
        "input": stream.text,
        "stream_mode": ["events"],
        "on_disconnect": "continue",
    }
    deadline = time.monotonic() + deadline_s
    with gateway() as http:
        while not stream.finished and time.monotonic() < deadline:
            try:
                if stream.run_id is None:
                    with http.stream("POST", "/runs/stream", json=body) as resp:
                        if resp.status_code != 200:
                            raise httpx.HTTPError(f"start answered {resp.status_code}")
                        loc = resp.headers.get("content-location", "")
                        stream.run_id = loc.rsplit("/", 1)[-1] or None
                        _read(resp, stream)
                else:
                    last = {"Last-Event-ID": str(stream.events[-1][0])} if stream.events else {}
                    url = f"/runs/{stream.run_id}/stream"
                    with http.stream("GET", url, headers=last) as resp:
                        if resp.status_code != 200:
                            raise httpx.HTTPError(f"resume answered {resp.status_code}")
                        _read(resp, stream)
            except (httpx.HTTPError, ValueError) as exc:
                stream.error = f"{type(exc).__name__}: {exc}"[:200]
            if not stream.finished:
                stream.reconnects += 1
                time.sleep(0.5)
    stream.done.set()


def start(
    count: int, text: str, deadline_s: float = 180, gateway: Gateway = local_gateway
) -> list[Stream]:
    CURRENT[:] = [Stream(text) for _ in range(count)]
    for stream in CURRENT:
        args = (stream, deadline_s, gateway)
        threading.Thread(target=_client, args=args, daemon=True).start()
    return CURRENT


def outcome(timeout: float) -> dict[str, Any]:
    """Every stream finished with each event once, in order, from seq 0 with none missing (a
    resume never repeats or skips; an event lost on its way shows as a gap)."""
    deadline = time.monotonic() + timeout
    for stream in CURRENT:
        stream.done.wait(max(0.0, deadline - time.monotonic()))
    broken = []
    for s in CURRENT:
        seqs = [seq for seq, _ in s.events]
        if not s.finished or seqs != list(range(len(seqs))):
            broken.append({"run_id": s.run_id, "events": len(seqs), "error": s.error})
    return {
        "streams": len(CURRENT),
        "streams_complete": len(CURRENT) - len(broken),
        "stream_reconnects": sum(s.reconnects for s in CURRENT),
        "streams_broken": broken,
    }
