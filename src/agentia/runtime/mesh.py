"""The processes of the mesh on one machine: control plane, services and their sidecars.

Everything here is a :class:`ProgramSpec`; the supervisor runs them. Ports come from
:mod:`agentia.names` so the CLI, ``dapr.yaml`` and the docs agree.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from agentia import names
from agentia.paths import repo_root
from agentia.runtime.daprbin import DaprBinaries
from agentia.runtime.programs import ProgramSpec

SERVICE_MODULES: dict[str, str] = {
    names.GATEWAY: "agentia_gateway",
    names.AGENT_RUNNER: "agentia_runner",
    names.MEMORY: "agentia_memory",
    names.SCHEDULER: "agentia_scheduler",
    names.TOOL_MCP: "agentia_toolmcp",
}


@dataclass(frozen=True)
class Tokens:
    """The two shared secrets between every app and its sidecar."""

    dapr_api_token: str
    app_api_token: str


def components_dir() -> Path:
    return repo_root() / "components"


def configuration_file() -> Path:
    return components_dir() / "config" / "configuration.yaml"


def sidecar_name(app_id: str) -> str:
    return f"{app_id}-dapr"


def placement_spec(bins: DaprBinaries, home: Path) -> ProgramSpec:
    return ProgramSpec(
        name="placement",
        group="control-plane",
        command=[
            str(bins.placement),
            "--port",
            str(names.PLACEMENT_PORT),
            "--listen-address",
            "127.0.0.1",
            "--healthz-port",
            str(names.PLACEMENT_HEALTHZ_PORT),
            "--healthz-listen-address",
            "127.0.0.1",
            "--metrics-port",
            str(names.PLACEMENT_METRICS_PORT),
            "--initial-cluster",
            f"dapr-placement-0=127.0.0.1:{names.PLACEMENT_RAFT_PORT}",
            "--metrics-listen-address",
            "127.0.0.1",
            "--log-as-json",
        ],
        directory=home,
        priority=200,
    )


def scheduler_spec(bins: DaprBinaries, home: Path) -> ProgramSpec:
    data = home / "data" / "scheduler"
    data.mkdir(parents=True, exist_ok=True)
    return ProgramSpec(
        name="dapr-scheduler",
        group="control-plane",
        command=[
            str(bins.scheduler),
            "--port",
            str(names.SCHEDULER_PORT),
            "--listen-address",
            "127.0.0.1",
            "--healthz-port",
            str(names.SCHEDULER_HEALTHZ_PORT),
            "--healthz-listen-address",
            "127.0.0.1",
            "--metrics-port",
            str(names.SCHEDULER_METRICS_PORT),
            "--metrics-listen-address",
            "127.0.0.1",
            "--etcd-data-dir",
            str(data),
            "--etcd-client-port",
            str(names.SCHEDULER_ETCD_CLIENT_PORT),
            "--etcd-client-listen-address",
            "127.0.0.1",
            "--etcd-initial-cluster",
            f"dapr-scheduler-server-0=http://127.0.0.1:{names.SCHEDULER_ETCD_PEER_PORT}",
            "--log-as-json",
        ],
        directory=home,
        priority=200,
    )


def sidecar_command(
    bins: DaprBinaries,
    app_id: str,
    ports: names.AppPorts,
    resources: list[Path] | None = None,
    config: Path | None = None,
) -> list[str]:
    """The daprd command line for ``app_id`` (resources default to ``components/``)."""
    command = [
        str(bins.daprd),
        "--mode",
        "standalone",
        "--app-id",
        app_id,
        "--app-port",
        str(ports.app),
        "--app-protocol",
        "http",
        "--dapr-listen-addresses",
        "127.0.0.1",
        "--dapr-http-port",
        str(ports.dapr_http),
        "--dapr-grpc-port",
        str(ports.dapr_grpc),
        "--dapr-internal-grpc-port",
        str(ports.dapr_internal_grpc),
        "--metrics-port",
        str(ports.dapr_metrics),
        "--placement-host-address",
        f"127.0.0.1:{names.PLACEMENT_PORT}",
        "--scheduler-host-address",
        f"127.0.0.1:{names.SCHEDULER_PORT}",
        "--config",
        str(config or configuration_file()),
        "--enable-app-health-check",
        "--app-health-check-path",
        "/livez",
        "--app-health-probe-interval",
        str(names.APP_HEALTH_PROBE_INTERVAL_S),
        "--app-health-probe-timeout",
        str(names.APP_HEALTH_PROBE_TIMEOUT_MS),
        "--app-health-threshold",
        str(names.APP_HEALTH_THRESHOLD),
        "--log-as-json",
    ]
    for path in resources or [components_dir()]:
        command += ["--resources-path", str(path)]
    return command


def app_environment(app_id: str, ports: names.AppPorts, tokens: Tokens) -> dict[str, str]:
    """Environment shared by an app and its sidecar: ids, ports and the two tokens."""
    return {
        "APP_ID": app_id,
        "APP_PORT": str(ports.app),
        "DAPR_HTTP_PORT": str(ports.dapr_http),
        "DAPR_GRPC_PORT": str(ports.dapr_grpc),
        "DAPR_API_TOKEN": tokens.dapr_api_token,
        "APP_API_TOKEN": tokens.app_api_token,
        "AGENTIA_OTLP_ENDPOINT": otlp_endpoint(),
        "PYTHONUNBUFFERED": "1",
    }


def tracestore_spec(home: Path) -> ProgramSpec:
    """Where every app and sidecar sends its spans on this machine (runtime/tracestore.py)."""
    return ProgramSpec(
        name=names.TRACESTORE,
        group="control-plane",
        command=[sys.executable, "-m", "agentia.runtime.tracestore"],
        directory=home,
        environment={"PYTHONUNBUFFERED": "1", "AGENTIA_HOME": str(home)},
        priority=200,
    )


def otlp_endpoint() -> str:
    """Where the apps export spans: AGENTIA_OTLP_ENDPOINT, else the local trace store."""
    return os.environ.get("AGENTIA_OTLP_ENDPOINT") or f"http://127.0.0.1:{names.TRACESTORE_PORT}"


def watchdog_spec(home: Path) -> ProgramSpec:
    """Restarts a sidecar whose broker subscriptions died (see runtime/watchdog.py)."""
    return ProgramSpec(
        name="watchdog",
        group="watchdog",
        command=[sys.executable, "-m", "agentia.runtime.watchdog"],
        directory=home,
        environment={"PYTHONUNBUFFERED": "1", "AGENTIA_HOME": str(home)},
        priority=600,
    )


def service_specs(bins: DaprBinaries, home: Path, tokens: Tokens) -> list[ProgramSpec]:
    """Each service and its sidecar, as two separately supervised processes."""
    specs: list[ProgramSpec] = []
    for app_id, module in SERVICE_MODULES.items():
        ports = names.PORTS[app_id]
        env = app_environment(app_id, ports, tokens)
        specs.append(
            ProgramSpec(
                name=app_id,
                group="app",
                command=[
                    sys.executable,
                    "-m",
                    "uvicorn",
                    f"{module}.app:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports.app),
                    "--no-access-log",
                    "--timeout-graceful-shutdown",
                    "10",
                ],
                directory=home,
                environment=env,
                priority=300,
            )
        )
        specs.append(
            ProgramSpec(
                name=sidecar_name(app_id),
                group="sidecar",
                command=sidecar_command(bins, app_id, ports),
                directory=home,
                environment=env,
                priority=400,
            )
        )
    return specs
