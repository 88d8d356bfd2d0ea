"""The Grafana dashboard and the Prometheus scrape file match what the mesh exports."""

from __future__ import annotations

import json
import re

import yaml
from prometheus_client import REGISTRY, generate_latest

import agentia.telemetry
import agentia_gateway.metrics
import agentia_runner.metrics
import agentia_scheduler.metrics
import agentia_tools.runtime.watchdog
from agentia import names
from agentia.paths import repo_root
from agentia_memory import metrics as memory_metrics

MODULES = (agentia.telemetry, agentia_gateway.metrics, agentia_runner.metrics)
MODULES += (agentia_scheduler.metrics, agentia_tools.runtime.watchdog)
SUFFIXES = ("_bucket", "_count", "_sum")


def _exported() -> set[str]:
    text = generate_latest(REGISTRY).decode()
    found = set(re.findall(r"^# TYPE (\w+) ", text, re.M))
    # Counters are exposed as <name>_total; the TYPE line names them without the suffix.
    found |= {f"{n}_total" for n in found}
    return found | {memory_metrics.METRIC}  # collected from the database, when it runs


def test_every_agentia_metric_on_the_dashboard_is_exported() -> None:
    assert MODULES  # imported for the metrics they define
    dash = json.loads((repo_root() / "deploy" / "grafana" / "agentia-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\bagentia_\w+", e)}
    for suffix in SUFFIXES:
        used = {m.removesuffix(suffix) for m in used}
    missing = used - _exported()
    assert not missing, f"on the dashboard, exported by nothing: {missing}"
    assert len(dash["panels"]) == len({p["id"] for p in dash["panels"]})


def test_the_scrape_file_names_the_mesh_ports() -> None:
    doc = yaml.safe_load((repo_root() / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: set(j["static_configs"][0]["targets"]) for j in doc["scrape_configs"]}
    local = "127.0.0.1:{}".format
    assert jobs["agentia-apps"] == {local(names.PORTS[a].app) for a in names.APP_IDS}
    assert jobs["dapr-sidecars"] == {local(names.PORTS[a].dapr_metrics) for a in names.APP_IDS}
    assert jobs["dapr-control-plane"] == {
        local(names.PLACEMENT_METRICS_PORT),
        local(names.SCHEDULER_METRICS_PORT),
    }
    assert jobs["agentia-watchdog"] == {local(names.WATCHDOG_METRICS_PORT)}
