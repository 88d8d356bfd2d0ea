"""`agentia up` / `down` / `status`: bring the whole mesh up in order, and down again.

Order matters: infrastructure, then the Dapr control plane, then each app with its
sidecar. Each step waits until what it started answers, and says what it is doing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from agentia import names
from agentia_tools import model_build
from agentia_tools.runtime import (
    health,
    infra,
    infra_servers,
    mesh,
    model_server,
    rabbitmq_cluster,
    trace_retention,
)
from agentia_tools.runtime.daprbin import DaprBinaries, ensure_dapr_binaries
from agentia_tools.runtime.local_keys import ensure_local_key
from agentia_tools.runtime.programs import ProgramSpec
from agentia_tools.runtime.secrets_file import ensure_tokens
from agentia_tools.runtime.supervisor import Supervisor, SupervisorError, wait_until

Progress = Callable[[str], None]
INFRA_NAMES = ("postgres", "redis", "rabbitmq")


class MeshError(RuntimeError):
    """The mesh could not be brought up; the message says what and where to look."""


@dataclass(frozen=True)
class MeshPlan:
    """Everything `up` will run."""

    bins: DaprBinaries
    tokens: mesh.Tokens
    infra_settings: infra.InfraSettings
    credentials: infra.Credentials
    specs: list[ProgramSpec]
    broker: str = "single"


def running_broker(home: Path) -> str | None:
    """The broker profile of the mesh the supervisor runs now (None: none runs)."""
    sup = Supervisor(home)
    if not sup.running():
        return None
    found = {p.name for p in sup.processes()}
    if rabbitmq_cluster.FRONT in found:
        return "cluster"
    return "single" if "rabbitmq" in found else None


def broker_profile(home: Path, asked: str | None = None) -> str:
    """``asked`` (``--broker``), else ``$AGENTIA_BROKER_PROFILE``, else the running mesh's,
    else ``single``. A profile other than the running mesh's is refused: its broker holds
    the queues, so switching is `agentia down` first."""
    running = running_broker(home)
    try:
        if asked or os.environ.get(rabbitmq_cluster.PROFILE_ENV):
            chosen = rabbitmq_cluster.profile(asked)
        else:
            chosen = running or "single"
    except ValueError as exc:
        raise MeshError(str(exc)) from None
    if running and chosen != running:
        raise MeshError(
            f"the mesh runs the {running} broker; `agentia down` first to start it with "
            f"the {chosen} broker (what waits in one broker's queues stays in that broker)"
        )
    return chosen


def plan(
    home: Path, progress: Progress, model: str = "offline", broker: str | None = None
) -> MeshPlan:
    """Install what is missing and decide the processes to run (starts nothing). ``model``:
    the model profile (``local`` adds the model server: runtime/model_server.py);
    ``broker``: the broker profile (``cluster``: runtime/rabbitmq_cluster.py)."""
    home.mkdir(parents=True, exist_ok=True)
    chosen_broker = broker_profile(home, broker)
    try:
        local = model_build.find() if model == "local" else None
    except model_build.ModelBuildError as exc:  # said before anything is installed or started
        raise MeshError(str(exc)) from None
    settings = infra.InfraSettings.from_env()
    if chosen_broker == "cluster" and settings.external("rabbitmq"):
        raise MeshError(
            "the cluster broker profile runs RabbitMQ nodes of its own: unset "
            "AGENTIA_RABBITMQ_URL, or use --broker single"
        )
    infra.ensure_packages(settings, progress)
    bins = ensure_dapr_binaries(progress)
    progress(f"dapr runtime {bins.version} ({bins.source}): {bins.daprd.parent}")
    creds = infra.load_or_create_credentials(home, settings)
    tokens = replace(ensure_tokens(home), trust_anchors=mesh.ensure_trust_anchors(bins, home))
    ensure_local_key(home)  # before the gateway starts: it reads the keys at start-up
    sup = Supervisor(home)
    managed = {
        p.name for p in sup.processes() if p.group == "infra" and p.state in ("RUNNING", "STARTING")
    }
    if managed & {*rabbitmq_cluster.process_names(), rabbitmq_cluster.FRONT}:
        managed.add("rabbitmq")
    infra_specs = infra.prepare(home, settings, creds, progress, managed, chosen_broker)
    specs = [
        *infra_specs,
        mesh.sentry_spec(bins, home),
        mesh.placement_spec(bins, home),
        mesh.scheduler_spec(bins, home),
        mesh.tracestore_spec(home),
        *mesh.service_specs(bins, home, tokens, chosen_broker),
        mesh.watchdog_spec(home, chosen_broker),
    ]
    if local is not None:
        specs = model_server.with_profile(home, specs, model)
        url = model_server.base_url()
        progress(f"model profile local: {local.name} ({local.gguf.name}) at {url}")
    return MeshPlan(bins, tokens, settings, creds, specs, chosen_broker)


def start_infra(
    home: Path, progress: Progress, model: str = "offline", broker: str | None = None
) -> tuple[Supervisor, MeshPlan]:
    """Infrastructure and the Dapr control plane only (what the integration tests need)."""
    p = plan(home, progress, model, broker)
    sup = Supervisor(home)
    sup.write(p.specs)
    sup.start_daemon()
    settings = p.infra_settings
    root = infra_servers.server_root(home)
    cluster = {*rabbitmq_cluster.process_names(), rabbitmq_cluster.FRONT}
    for spec in p.specs:
        if spec.group == "infra" and spec.name not in cluster:
            progress(f"starting {spec.name}")
            sup.start(spec.name)
    try:
        if any(spec.name in cluster for spec in p.specs):
            rabbitmq_cluster.start(sup, root, settings.rabbitmq_port, settings.host, progress)
        infra.wait_ready(settings, p.credentials, 120, progress)
        if p.broker == "cluster":
            rabbitmq_cluster.settle(root, settings.rabbitmq_port, settings.host, progress)
    except rabbitmq_cluster.ClusterError as exc:
        raise MeshError(f"{exc}\nlogs: {home / 'logs'}") from None
    infra.bootstrap_after_start(settings, p.credentials, progress)
    # Sentry first: placement, the scheduler and every sidecar ask it for their identity.
    progress("starting sentry")
    sup.start("sentry")
    wait_until(lambda: _all_ok([health.sentry_probe()]), 60, "sentry")
    for spec in p.specs:
        if spec.group == "control-plane" and spec.name != "sentry":
            progress(f"starting {spec.name}")
            sup.start(spec.name)
    wait_until(lambda: _all_ok(health.control_plane_probes()), 60, "dapr control plane")
    return sup, p


def up(
    home: Path, progress: Progress, model: str | None = None, broker: str | None = None
) -> list[health.Probe]:
    """Bring the whole mesh up and return the health of every part. ``model``: the model
    profile, ``offline`` or ``local`` (default: ``$AGENTIA_MODEL_PROFILE``, else offline);
    ``broker``: ``single`` or ``cluster`` (see :func:`broker_profile`)."""
    started = time.monotonic()
    try:
        mesh.trace_sampling()  # a bad setting is named before anything starts
        trace_retention.max_spans(os.environ)
        chosen = model_server.profile(model)
    except ValueError as exc:
        raise MeshError(str(exc)) from None
    try:
        sup, p = start_infra(home, progress, chosen, broker)
        for spec in p.specs:
            if spec.group == model_server.GROUP:
                progress(f"starting {spec.name} (llama-server)")
                sup.start(spec.name, wait=False)
        for spec in p.specs:
            if spec.group == "app":
                progress(f"starting {spec.name} and its sidecar")
                sup.start(spec.name, wait=False)
                sup.start(mesh.sidecar_name(spec.name), wait=False)
        sup.start("watchdog", wait=False)
        wait_until(lambda: _all_ok(_probes(home)), 180, "services and sidecars", 0.5)
    except (infra.InfraError, SupervisorError) as exc:
        raise MeshError(f"{exc}\nlogs: {home / 'logs'}") from exc
    progress(f"mesh up in {time.monotonic() - started:.1f}s")
    return status(home)


def down(home: Path, progress: Progress) -> None:
    """Stop every process the mesh started (reused external servers are left alone)."""
    sup = Supervisor(home)
    if not sup.running():
        progress("nothing running")
        return
    # Apps and sidecars first, infrastructure last, so nothing logs errors about a lost broker.
    order = {"app": 0, "sidecar": 1, model_server.GROUP: 1, "control-plane": 2, "infra": 3}
    procs = sorted(sup.processes(), key=lambda p: order.get(p.group, 9))
    for proc in procs:
        if proc.state in ("RUNNING", "STARTING", "BACKOFF"):
            progress(f"stopping {proc.name}")
            sup.stop(proc.name)
    sup.shutdown()
    if any(p.name.startswith("rabbitmq") for p in procs):
        infra.stop_leftovers(progress)
    progress("mesh down")


def status(home: Path) -> list[health.Probe]:
    """Health of infrastructure, control plane, apps and sidecars, with supervisor state."""
    settings = infra.InfraSettings.from_env()
    probes: list[health.Probe] = []
    try:
        creds = infra.load_or_create_credentials(home, settings, create=False)
    except infra.InfraError as exc:
        probes += [health.Probe(n, "infra", False, str(exc)) for n in INFRA_NAMES]
    else:
        probes += [
            health.Probe(h.name, "infra", h.ok, h.detail) for h in infra.check(settings, creds)
        ]
    if running_broker(home) == "cluster":
        for node in rabbitmq_cluster.NODES:
            port = rabbitmq_cluster.node_port(settings.rabbitmq_port, node)
            ok = infra_servers.answering(settings.host, port)
            detail = f"quorum node on {settings.host}:{port}" if ok else "not answering"
            probes.append(health.Probe(rabbitmq_cluster.process_name(node), "infra", ok, detail))
    probes += _probes(home)
    states = {p.name: p for p in Supervisor(home).processes()}
    out = []
    for probe in probes:
        proc = states.get(probe.name)
        if proc and not probe.ok and proc.state not in ("RUNNING", "STARTING"):
            probe = health.Probe(
                probe.name, probe.kind, False, f"{proc.state.lower()}: {probe.detail}", probe.url
            )
        out.append(probe)
    return out


def _probes(home: Path) -> list[health.Probe]:
    """The mesh's probes, with the model server's when the mesh runs one."""
    probes = health.mesh_probes()
    if names.MODEL_SERVER in Supervisor(home).groups():
        probes.append(model_server.probe())
    return probes


def gateway_url() -> str:
    return f"http://127.0.0.1:{names.PORTS[names.GATEWAY].app}"


def _all_ok(probes: list[health.Probe]) -> tuple[bool, str]:
    bad = [f"{p.name}: {p.detail}" for p in probes if not p.ok]
    return (not bad, "; ".join(bad) or "ok")
