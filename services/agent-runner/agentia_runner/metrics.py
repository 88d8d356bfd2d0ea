"""agent-runner's Prometheus metrics (served on /metrics with the shared HTTP ones)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RUNS_STARTED = Counter("agentia_runs_started_total", "Runs started, by agent.", ["agent"])
RUNS_FINISHED = Counter(
    "agentia_runs_finished_total", "Runs finished, by agent and status.", ["agent", "status"]
)
RUNS_ACTIVE = Gauge("agentia_runs_active", "Runs executing in this process now.")
RUN_SECONDS = Histogram(
    "agentia_run_seconds",
    "Time from a run's start to its end, by agent.",
    ["agent"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
TOOL_SECONDS = Histogram(
    "agentia_tool_call_seconds",
    "Time a tool call took, by tool (from the Agents SDK's function spans).",
    ["tool"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
MODEL_SECONDS = Histogram(
    "agentia_model_call_seconds",
    "Time a model call took (the SDK's generation and response spans).",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
MODEL_TOKENS = Counter(
    "agentia_model_tokens_total",
    "Model tokens the runs used, by agent and kind (input, output).",
    ["agent", "kind"],
)
