"""The processes of the mesh on one machine: control plane, services and their sidecars.

Everything here is a :class:`ProgramSpec`; the supervisor runs them. Ports come from
:mod:`agentia.names` so the CLI, ``dapr.yaml`` and the docs agree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from agentia import names
from agentia.paths import agentia_home, repo_root
from agentia_tools import access
from agentia_tools.net import free_ports
from agentia_tools.runtime import rabbitmq_cluster, trace_retention
from agentia_tools.runtime.clock import clock_environment
from agentia_tools.runtime.daprbin import DaprBinaries
from agentia_tools.runtime.programs import ProgramSpec


@dataclass(frozen=True)
class Tokens:
    """The two shared secrets between every app and its sidecar, and the root certificate
    every sidecar trusts (public: Sentry's CA, which signs each sidecar's mTLS identity)."""

    dapr_api_token: str
    app_api_token: str
    trust_anchors: str = ""


FAULT_INJECTION_ENV = "AGENTIA_FAULT_INJECTION"


def components_dir() -> Path:
    return repo_root() / "components"


def configuration_file() -> Path:
    return components_dir() / "config" / "configuration.yaml"


def sidecar_name(app_id: str) -> str:
    return f"{app_id}-dapr"


def certs_dir(home: Path) -> Path:
    """Sentry's root and issuer certificates (self-signed, made on the first start)."""
    return home / "certs"


def trust_anchors_file(home: Path) -> Path:
    return certs_dir(home) / "ca.crt"


def sentry_config_file(home: Path) -> Path:
    """Sentry's own Configuration: workload certificates live a day, then are renewed."""
    path = home / "config" / "sentry.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Configuration",
        "metadata": {"name": "daprsystem"},
        "spec": {"mtls": {"enabled": True, "workloadCertTTL": "24h", "allowedClockSkew": "15m"}},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _sentry_command(
    bins: DaprBinaries, home: Path, port: int, healthz: int, metrics: int
) -> list[str]:
    return [
        str(bins.sentry),
        "--mode",
        "standalone",
        "--config",
        str(sentry_config_file(home)),
        "--issuer-credentials",
        str(certs_dir(home)),
        "--trust-domain",
        access.CONTROL_PLANE_TRUST_DOMAIN,
        "--port",
        str(port),
        "--listen-address",
        "127.0.0.1",
        "--healthz-port",
        str(healthz),
        "--healthz-listen-address",
        "127.0.0.1",
        "--metrics-port",
        str(metrics),
        "--metrics-listen-address",
        "127.0.0.1",
        "--log-as-json",
    ]


def sentry_spec(bins: DaprBinaries, home: Path) -> ProgramSpec:
    """Dapr's certificate authority: every sidecar, placement and the scheduler get their
    mTLS identity (a SPIFFE id naming the app) from it."""
    return ProgramSpec(
        name="sentry",
        group="control-plane",
        command=_sentry_command(
            bins, home, names.SENTRY_PORT, names.SENTRY_HEALTHZ_PORT, names.SENTRY_METRICS_PORT
        ),
        directory=home,
        priority=150,
    )


def ensure_trust_anchors(bins: DaprBinaries, home: Path, timeout: float = 30) -> str:
    """The mesh's root certificate (PEM). On the first start Sentry makes the root and issuer
    pair itself: run it once, on spare ports, until it has written them."""
    anchors = trust_anchors_file(home)
    if not anchors.exists():
        certs_dir(home).mkdir(parents=True, exist_ok=True, mode=0o700)
        log = home / "logs" / "sentry-first-start.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                _sentry_command(bins, home, *free_ports(3)),
                cwd=home,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + timeout
            try:
                while not anchors.exists() and proc.poll() is None:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
            finally:
                proc.terminate()
                proc.wait(timeout=10)
        if not anchors.exists():
            raise RuntimeError(f"Sentry made no root certificate in {timeout:.0f}s; see {log}")
    return anchors.read_text()


def control_plane_tls(home: Path) -> list[str]:
    """Flags that put placement and the scheduler behind mTLS with Sentry's identities."""
    return [
        "--tls-enabled",
        "--trust-domain",
        access.CONTROL_PLANE_TRUST_DOMAIN,
        "--trust-anchors-file",
        str(trust_anchors_file(home)),
        "--sentry-address",
        f"127.0.0.1:{names.SENTRY_PORT}",
    ]


def app_configuration_file(home: Path, app_id: str) -> Path:
    """``app_id``'s Configuration: the shared one plus who may call it and which secrets it
    may read (agentia_tools.access)."""
    base = yaml.safe_load(configuration_file().read_text())
    base["spec"]["tracing"]["samplingRate"] = str(trace_sampling())
    path = home / "config" / f"{app_id}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = access.app_configuration(base, app_id)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


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
            *control_plane_tls(home),
        ],
        directory=home,
        priority=200,
    )


def prune_identity_versions(target: Path, older_than_s: float = 600) -> int:
    """Remove the versioned folders an identity symlink no longer points to. The scheduler
    writes its identity as ``<nanos>-<name>/`` beside ``<name>`` (a symlink it swaps) and
    removes the version it replaced only on its next write in the same process, so each
    restart leaves one behind. Recent ones stay: a write may be under way."""
    current = target.resolve() if target.is_symlink() else None
    cutoff = time.time() - older_than_s
    gone = 0
    for version in target.parent.glob(f"*-{target.name}"):
        if version == current or not version.name.split("-", 1)[0].isdigit():
            continue
        if version.is_dir() and version.stat().st_mtime < cutoff:
            shutil.rmtree(version, ignore_errors=True)
            gone += 1
    return gone


def scheduler_spec(bins: DaprBinaries, home: Path) -> ProgramSpec:
    data = home / "data" / "scheduler"
    data.mkdir(parents=True, exist_ok=True)
    prune_identity_versions(home / "data" / "scheduler-identity")
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
            "--identity-directory-write",
            str(home / "data" / "scheduler-identity"),
            "--log-as-json",
            *control_plane_tls(home),
        ],
        directory=home,
        priority=200,
    )


DAPRD_LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


def daprd_log_level() -> str:
    """The sidecars' log level, ``AGENTIA_DAPRD_LOG_LEVEL`` (debug shows each delivery a
    sidecar hands its app: for chasing a message that went missing)."""
    level = os.environ.get("AGENTIA_DAPRD_LOG_LEVEL", "info").strip().lower()
    if level not in DAPRD_LOG_LEVELS:
        raise ValueError(f"AGENTIA_DAPRD_LOG_LEVEL must be one of {', '.join(DAPRD_LOG_LEVELS)}")
    return level


def sidecar_command(
    bins: DaprBinaries,
    app_id: str,
    ports: names.AppPorts,
    resources: list[Path] | None = None,
    config: Path | None = None,
    *,
    mtls: bool = True,
) -> list[str]:
    """The daprd command line for ``app_id`` (resources default to ``components/``; a mesh
    service's replica gets that service's Configuration, so its access policy holds too)."""
    if config is None and app_id in names.APP_IDS:
        config = app_configuration_file(agentia_home(), app_id)
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
        # Every port of the sidecar on loopback only (with DAPR_HOST_IP, app_environment):
        # its internal gRPC, which the other sidecars reach at the address it registers for
        # name resolution, and its metrics (patches/dapr-listen-addresses.patch).
        "--dapr-internal-grpc-listen-address",
        "127.0.0.1",
        "--metrics-listen-address",
        "127.0.0.1",
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
        "--log-level",
        daprd_log_level(),
    ]
    if mtls:
        # Sidecar-to-sidecar calls and the links to placement and the scheduler are mutual
        # TLS, each side identified by a certificate from Sentry (DAPR_TRUST_ANCHORS). Off
        # only for the benchmark's plain baseline pair, which cannot reach the control plane
        # then and runs without actors, workflows and jobs.
        command += [
            "--placement-host-address",
            f"127.0.0.1:{names.PLACEMENT_PORT}",
            "--scheduler-host-address",
            f"127.0.0.1:{names.SCHEDULER_PORT}",
            "--enable-mtls",
            "--sentry-address",
            f"127.0.0.1:{names.SENTRY_PORT}",
            "--control-plane-trust-domain",
            access.CONTROL_PLANE_TRUST_DOMAIN,
        ]
    for path in resources or [components_dir()]:
        command += ["--resources-path", str(path)]
    return command


def resources_override(home: Path, app_id: str) -> Path:
    """A folder that, while it exists, replaces ``components/`` for ``app_id``'s sidecar:
    chaos experiments put a changed copy of the resources there (one sidecar's component
    scopes narrowed, say) and restart that sidecar."""
    return home / "run" / "resources" / app_id


def sidecar_resources(home: Path, app_id: str, broker: str = "single") -> list[Path] | None:
    """A chaos experiment's override, else the cluster profile's quorum copy, else None
    (``components/``)."""
    override = resources_override(home, app_id)
    if override.is_dir():
        return [override]
    if broker == "cluster":
        return [rabbitmq_cluster.quorum_resources(home, components_dir())]
    return None


def app_environment(app_id: str, ports: names.AppPorts, tokens: Tokens) -> dict[str, str]:
    """Environment shared by an app and its sidecar: ids, ports and the two tokens."""
    return {
        "APP_ID": app_id,
        "APP_PORT": str(ports.app),
        # The address a sidecar registers for name resolution (it binds only loopback).
        "DAPR_HOST_IP": "127.0.0.1",
        "DAPR_HTTP_PORT": str(ports.dapr_http),
        "DAPR_GRPC_PORT": str(ports.dapr_grpc),
        "DAPR_API_TOKEN": tokens.dapr_api_token,
        "APP_API_TOKEN": tokens.app_api_token,
        "DAPR_TRUST_ANCHORS": tokens.trust_anchors,
        "AGENTIA_OTLP_ENDPOINT": otlp_endpoint(),
        "PYTHONUNBUFFERED": "1",
        # Crash points (agentia.faults) only where whoever starts the mesh asks for them:
        # the test suite does; `agentia up` on its own does not.
        **{k: v for k, v in os.environ.items() if k == FAULT_INJECTION_ENV},
        names.TRACE_SAMPLING_ENV: str(trace_sampling()),
    }


def trace_sampling() -> float:
    """AGENTIA_TRACE_SAMPLING (0 to 1; 1 when unset), for the apps and their sidecars alike."""
    raw = os.environ.get(names.TRACE_SAMPLING_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{names.TRACE_SAMPLING_ENV} must be a number from 0 to 1, not {raw!r}")
    return rate


def tracestore_spec(home: Path) -> ProgramSpec:
    """Where every app and sidecar sends its spans on this machine (runtime/tracestore.py)."""
    limit = trace_retention.max_spans(os.environ)  # ValueError naming a bad setting
    env = {"PYTHONUNBUFFERED": "1", "AGENTIA_HOME": str(home)}
    return ProgramSpec(
        name=names.TRACESTORE,
        group="control-plane",
        command=[sys.executable, "-m", "agentia_tools.runtime.tracestore"],
        directory=home,
        environment={**env, trace_retention.MAX_SPANS_ENV: str(limit)},
        priority=200,
    )


def otlp_endpoint() -> str:
    """Where the apps export spans: AGENTIA_OTLP_ENDPOINT, else the local trace store."""
    return os.environ.get("AGENTIA_OTLP_ENDPOINT") or f"http://127.0.0.1:{names.TRACESTORE_PORT}"


def watchdog_spec(home: Path, broker: str = "single") -> ProgramSpec:
    """Restarts a sidecar whose broker subscriptions died (see runtime/watchdog.py)."""
    return ProgramSpec(
        name="watchdog",
        group="watchdog",
        command=[sys.executable, "-m", "agentia_tools.runtime.watchdog"],
        directory=home,
        environment={
            "PYTHONUNBUFFERED": "1",
            "AGENTIA_HOME": str(home),
            rabbitmq_cluster.PROFILE_ENV: broker,  # which broker it asks for queue counts
        },
        priority=600,
    )


def service_specs(
    bins: DaprBinaries, home: Path, tokens: Tokens, broker: str = "single"
) -> list[ProgramSpec]:
    """Each service and its sidecar, as two separately supervised processes (``broker``:
    the broker profile, runtime/rabbitmq_cluster.py)."""
    specs: list[ProgramSpec] = []
    for app_id, module in names.SERVICE_MODULES.items():
        ports = names.PORTS[app_id]
        env = {**app_environment(app_id, ports, tokens), **access.app_env(app_id)}
        env[names.BROKER_QUEUE_TYPE_ENV] = rabbitmq_cluster.queue_type(broker)
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
                environment={**env, **clock_environment(home, app_id)},
                priority=300,
            )
        )
        specs.append(
            ProgramSpec(
                name=sidecar_name(app_id),
                group="sidecar",
                command=sidecar_command(
                    bins,
                    app_id,
                    ports,
                    resources=sidecar_resources(home, app_id, broker),
                    config=app_configuration_file(home, app_id),
                ),
                directory=home,
                environment=env,
                priority=400,
            )
        )
    return specs
