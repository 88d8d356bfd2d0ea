"""The memory service's size as Prometheus gauges: rows per table, counted at most every
``EVERY_S`` (a scrape never waits on more than one count per table)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Final

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text

METRIC: Final = "agentia_memory_rows"
TABLES: Final = ("threads", "thread_items", "store_items")
EVERY_S: Final = 15.0


class SizeCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._counts: dict[str, float] = {}
        self._at = 0.0

    def _refresh(self) -> None:
        if time.monotonic() - self._at < EVERY_S:
            return
        with self._engine.connect() as conn:
            for table in TABLES:
                # Table names are constants above, not input.
                count = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
                self._counts[table] = float(count)
        self._at = time.monotonic()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            self._refresh()
        except Exception:
            return
        family = GaugeMetricFamily(
            METRIC, "Rows the memory service keeps, by table.", labels=["table"]
        )
        for table, count in self._counts.items():
            family.add_metric([table], count)
        yield family


def register(engine: Engine) -> SizeCollector:
    collector = SizeCollector(engine)
    REGISTRY.register(collector)
    return collector


def unregister(collector: SizeCollector) -> None:
    REGISTRY.unregister(collector)
