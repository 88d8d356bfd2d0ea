"""The scheduler's Prometheus metrics (served on /metrics with the shared HTTP ones)."""

from __future__ import annotations

from prometheus_client import Counter

FIRES = Counter(
    "agentia_schedule_fires_total", "Schedule fires that started work, by kind.", ["kind"]
)
SKIPS = Counter(
    "agentia_schedule_skips_total", "Schedule fires that started nothing (over budget)."
)
DRAINED = Counter(
    "agentia_drained_runs_total", "Runs a drain started from a pull-based topic.", ["topic"]
)
DRAINS = Counter("agentia_drains_total", "Drains, by why they stopped.", ["stopped"])
