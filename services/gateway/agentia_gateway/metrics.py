"""The gateway's Prometheus metrics (served on /metrics with the shared HTTP ones)."""

from __future__ import annotations

from prometheus_client import Counter

REFUSED = Counter(
    "agentia_gateway_refused_total",
    "Requests refused at the door, by status (401 key, 403 scope, 413/422 body, 429 limits).",
    ["status"],
)
TOKENS_USED = Counter(
    "agentia_tokens_used_total",
    "Model tokens counted against keys' budgets, by key id and kind (input, output).",
    ["key_id", "kind"],
)
RUNS_COUNTED = Counter(
    "agentia_usage_runs_total", "Runs whose usage was counted, by key id.", ["key_id"]
)
