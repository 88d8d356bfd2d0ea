"""The one place that names things on the mesh.

Every service, test, CLI command and manifest imports these constants: a topic,
pub/sub component, state store or app id is never retyped as a string literal.
The Dapr component YAML files in ``components/`` use the same names; a unit test
checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Dapr app ids, one per service.
GATEWAY: Final = "gateway"
AGENT_RUNNER: Final = "agent-runner"
MEMORY: Final = "memory"
SCHEDULER: Final = "scheduler"
SCHEDULER_DRAIN: Final = "scheduler-drain"  # the Kubernetes CronJob that drains runs.batch
TOOL_MCP: Final = "tool-mcp"
APP_IDS: Final = (GATEWAY, AGENT_RUNNER, MEMORY, SCHEDULER, TOOL_MCP)
# Each service's Python package (its code is services/<app id>/<package>; it serves
# <package>.app:create_app) and the optional-dependency set of pyproject.toml named like the
# app id, which its image installs on top of the building blocks.
SERVICE_MODULES: Final[dict[str, str]] = {
    GATEWAY: "agentia_gateway",
    AGENT_RUNNER: "agentia_runner",
    MEMORY: "agentia_memory",
    SCHEDULER: "agentia_scheduler",
    TOOL_MCP: "agentia_toolmcp",
}
# Code a service runs beside its own package (the runner hosts the workflows' code).
SERVICE_EXTRA_CODE: Final[dict[str, tuple[str, ...]]] = {
    AGENT_RUNNER: ("workflows/agentia_workflows",)
}

# Dapr components (metadata.name in components/*.yaml).
PUBSUB: Final = "pubsub"
PUBSUB_DRAIN: Final = "pubsub-drain"  # the same broker, for drains (no inbound retries)
STATE_STORE: Final = "statestore"  # PostgreSQL, actor/workflow state
# The same table, for create-only writes: no sidecar retries, so a lost race answers at once.
STATE_STORE_CREATE: Final = "statestore-create"
CACHE_STORE: Final = "cache"  # Redis: hot reads, idempotency keys
CACHE_STORE_CREATE: Final = "cache-create"  # the same Redis, for create-only writes
LOCK_STORE: Final = "lock"  # Redis distributed lock
SECRET_STORE: Final = "secrets"  # local.file locally, kubernetes on a cluster
RATE_LIMIT_BINDING: Final = "ratelimit"  # Redis output binding: atomic INCR counters
RESILIENCY: Final = "agentia-resiliency"
CONFIGURATION: Final = "agentia-config"

# Topics.
TOPIC_RUNS_REQUESTED: Final = "runs.requested"
TOPIC_RUNS_EVENTS: Final = "runs.events"
TOPIC_MEMORY_EVENTS: Final = "memory.events"
# agent-runner's agent definitions, kept by the gateway (events.AgentCatalog).
TOPIC_AGENT_CATALOG: Final = "agents.catalog"
# Run requests started in bounded batches by a drain (pull-based), not as they arrive.
TOPIC_RUNS_BATCH: Final = "runs.batch"
DEAD_LETTER_SUFFIX: Final = ".dlq"


def dead_letter(topic: str) -> str:
    """The dead-letter topic of ``topic``: every subscription has one."""
    return f"{topic}{DEAD_LETTER_SUFFIX}"


TOPICS: Final = (
    TOPIC_RUNS_REQUESTED,
    TOPIC_RUNS_EVENTS,
    TOPIC_MEMORY_EVENTS,
    TOPIC_RUNS_BATCH,
    TOPIC_AGENT_CATALOG,
)
# Topics nobody is pushed: drains pull them, always from this one durable queue (whichever
# app id drains), which the scheduler declares at start-up so nothing published is dropped.
DRAINABLE_TOPICS: Final = (TOPIC_RUNS_BATCH,)


def drain_queue(topic: str) -> str:
    """The broker queue a drain of ``topic`` reads (Dapr's RabbitMQ ``queueName``)."""
    return f"agentia-drain-{topic}"


# The ``_meta`` key agent-runner puts on every MCP tool call: a key made of the run id and the
# call's place in the run (not the attempt), the same when a retried run calls the tool
# again; a tool with effects applies a key it has seen once (docs/tools.md).
MCP_EFFECT_KEY: Final = "agentia/effect_key"

# Secret keys held in the secret store (never in YAML, never in logs).
SECRET_POSTGRES_URL: Final = "postgres-url"
SECRET_POSTGRES_DSN: Final = "postgres-dsn"  # key=value form, as Dapr's postgres components want
SECRET_RABBITMQ_URL: Final = "rabbitmq-url"
SECRET_REDIS_HOST: Final = "redis-host"
SECRET_REDIS_PASSWORD: Final = "redis-password"
SECRET_DAPR_API_TOKEN: Final = "dapr-api-token"
SECRET_APP_API_TOKEN: Final = "app-api-token"
SECRET_OPENAI_API_KEY: Final = "openai-api-key"  # optional: real models
SECRET_GATEWAY_API_KEYS: Final = "gateway-api-keys"  # JSON: hashed API keys and their scopes
SECRET_GATEWAY_JWT_KEY: Final = "gateway-jwt-key"  # optional: HS256 key for bearer JWTs


@dataclass(frozen=True)
class AppPorts:
    """The local ports of one service and its sidecar on a single machine."""

    app: int
    dapr_http: int
    dapr_grpc: int
    dapr_internal_grpc: int
    dapr_metrics: int


# Fixed so that a user, `dapr.yaml` and the docs all agree on where things are; all below
# Linux's ephemeral range (32768-60999), where an outgoing connection's source port could
# take one first and a sidecar would fail to bind it.
PORTS: Final[dict[str, AppPorts]] = {
    GATEWAY: AppPorts(8000, 3500, 31101, 31201, 9101),
    AGENT_RUNNER: AppPorts(8001, 3501, 31102, 31202, 9102),
    MEMORY: AppPorts(8002, 3502, 31103, 31203, 9103),
    SCHEDULER: AppPorts(8003, 3503, 31104, 31204, 9104),
    TOOL_MCP: AppPorts(8004, 3504, 31105, 31205, 9105),
}

PLACEMENT_PORT: Final = 31005
PLACEMENT_HEALTHZ_PORT: Final = 8090
PLACEMENT_METRICS_PORT: Final = 9190
SCHEDULER_PORT: Final = 31006
SCHEDULER_HEALTHZ_PORT: Final = 8091
SCHEDULER_METRICS_PORT: Final = 9191
SCHEDULER_ETCD_CLIENT_PORT: Final = 2389
SCHEDULER_ETCD_PEER_PORT: Final = 2390
PLACEMENT_RAFT_PORT: Final = 8201
SENTRY_PORT: Final = 31007  # Dapr's certificate authority (mTLS identities)
SENTRY_HEALTHZ_PORT: Final = 8092
SENTRY_METRICS_PORT: Final = 9193
# How a sidecar probes its app's /livez: every 5 s, each probe given 3 s (Dapr wants the
# timeout below the interval), unhealthy after 3 failures in a row. Dapr's 500 ms default
# marked a busy app (its event loop held up for half a second on 2 loaded cores) unhealthy,
# and an unhealthy app's subscriptions are dropped and taken again: redelivery storms and
# the watchdog's restarts followed.
APP_HEALTH_PROBE_INTERVAL_S: Final = 5
APP_HEALTH_PROBE_TIMEOUT_MS: Final = 3000
APP_HEALTH_THRESHOLD: Final = 3
# The local trace store (runtime/tracestore.py): OTLP/HTTP's standard port.
TRACESTORE: Final = "tracestore"
# The share of runs traced (0 to 1), read by the apps and written into their sidecars'
# Configuration by the local mesh: 1 keeps every run findable by `agentia trace`.
TRACE_SAMPLING_ENV: Final = "AGENTIA_TRACE_SAMPLING"
# The queue type the apps ask the broker for (quorum on a RabbitMQ cluster), where they
# declare queues themselves: the scheduler's drains.
BROKER_QUEUE_TYPE_ENV: Final = "AGENTIA_BROKER_QUEUE_TYPE"
TRACESTORE_PORT: Final = 4318
WATCHDOG_METRICS_PORT: Final = 9192  # queue lag per subscribed queue (runtime/watchdog.py)
# The local model profile's llama-server (`agentia up --model local`), on loopback only.
MODEL_SERVER: Final = "model-server"
MODEL_SERVER_PORT: Final = 8094
