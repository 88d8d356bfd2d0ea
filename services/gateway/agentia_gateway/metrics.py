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
MODEL_TOKENS = Counter(
    "agentia_model_tokens_used_total",
    "Model tokens counted against keys, by key id, model and kind (input, output).",
    ["key_id", "model", "kind"],
)
MODEL_REQUESTS = Counter(
    "agentia_model_requests_total",
    "Model requests (responses) counted against keys' model limits, by key id and model.",
    ["key_id", "model"],
)
COST = Counter(
    "agentia_cost_micro_usd_total",
    "What keys' model usage cost, in micro-dollars (1 USD = 1,000,000), by key id and model.",
    ["key_id", "model"],
)
BUDGET_REFUSED = Counter(
    "agentia_budget_refusals_total",
    "Runs refused (429) over a budget or limit, by kind (tokens, cost, model_minute, model_day).",
    ["kind"],
)
QUEUED = Counter(
    "agentia_budget_queued_total",
    "Runs over a budget or limit queued on runs.batch (Prefer: over-budget=queue), not refused.",
)
