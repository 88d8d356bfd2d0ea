"""How many messages each queue of the local broker holds, ready or unacknowledged: what
the broker's own protocol cannot say (a passive declare counts ready messages only).

Asked from the broker's Prometheus endpoint (rabbitmq_prometheus, which the local broker
runs) when it answers: an HTTP call of a few milliseconds, for numbers the broker refreshes
every few seconds. Otherwise, and when a question needs the number as of now, rabbitmqctl,
whose every call boots an Erlang VM (about 0.5-0.8 s of CPU): the local cluster's nodes, a
broker started before the endpoint was configured.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from typing import Final

import httpx

from agentia.paths import agentia_home
from agentia_tools.runtime import rabbitmq_cluster
from agentia_tools.runtime.infra_config import InfraSettings
from agentia_tools.runtime.infra_servers import (
    RABBITMQ_BIN,
    rabbitmq_env,
    rabbitmq_metrics_port,
    server_root,
)

# rabbitmqctl's columns, and the broker's Prometheus gauges that carry the same numbers.
METRIC_OF: Final = {
    "messages_unacknowledged": "rabbitmq_detailed_queue_messages_unacked",
    "messages": "rabbitmq_detailed_queue_messages",
}
_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\}\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_queue_metric(text: str, metric: str) -> dict[str, int]:
    """One gauge per queue from Prometheus' text format (vhost ``/`` only: the mesh's)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        found = _SAMPLE.match(line)
        if found is None or found.group(1) != metric:
            continue
        labels = dict(_LABEL.findall(found.group(2)))
        if labels.get("vhost", "/") == "/" and "queue" in labels:
            out[labels["queue"]] = int(float(found.group(3)))
    return out


@functools.cache
def _http() -> httpx.Client:
    """One client for the process (a long-lived caller asks every few seconds; a client per
    call builds a TLS context each time, and the process grows)."""
    return httpx.Client(timeout=5)


def _metrics_queues(settings: InfraSettings, column: str) -> dict[str, int] | None:
    """From the broker's Prometheus endpoint (refreshed every few seconds by the broker);
    None when it does not answer (an older broker, one not run here)."""
    port = rabbitmq_metrics_port(settings.rabbitmq_port)
    url = f"http://{settings.host}:{port}/metrics/detailed?family=queue_coarse_metrics"
    try:
        resp = _http().get(url)
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    return parse_queue_metric(resp.text, METRIC_OF[column])


def per_queue(column: str, exact: bool = False) -> dict[str, int]:
    """One number per queue: from the broker's Prometheus endpoint, else (or when ``exact``:
    the endpoint's numbers may be a few seconds old) rabbitmqctl, about 0.5-0.8 s of an
    Erlang VM. Empty when neither can be asked (a broker not run here)."""
    settings = InfraSettings.from_env()
    root = server_root(agentia_home())
    if rabbitmq_cluster.profile() == "cluster":  # any node that answers
        port, host = settings.rabbitmq_port, settings.host
        try:
            rows = rabbitmq_cluster.ctl_json(
                root, port, host, ["rabbitmqctl", "list_queues", "name", column]
            )
            return {q["name"]: int(q[column]) for q in rows or []}
        except (rabbitmq_cluster.ClusterError, ValueError, KeyError, TypeError):
            return {}
    if not exact and not settings.external("rabbitmq"):
        found = _metrics_queues(settings, column)
        if found is not None:
            return found
    env = {**os.environ, **rabbitmq_env(root, settings.rabbitmq_port, settings.host)}
    cmd = [str(RABBITMQ_BIN / "rabbitmqctl"), "list_queues", "name", column]
    try:
        out = subprocess.run(
            [*cmd, "--formatter", "json", "-q"],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        return {q["name"]: int(q[column]) for q in json.loads(out or "[]")}
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return {}
