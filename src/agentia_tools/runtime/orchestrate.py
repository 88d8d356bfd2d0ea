"""`agentia up` / `down` / `status`: bring the whole mesh up in order, and down again.

Order matters: infrastructure, then the Dapr control plane, then each app with its
sidecar. Each step waits until what it started answers, and says what it is doing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from agentia import names
from agentia_tools import model_build
from agentia_tools.runtime import health, infra, mesh, model_server
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


def plan(home: Path, progress: Progress, model: str = "offline") -> MeshPlan:
    """Install what is missing and decide the processes to run (starts nothing). ``model``:
    the model profile (``local`` adds the model server: runtime/model_server.py)."""
    home.mkdir(parents=True, exist_ok=True)
    try:
        local = model_build.find() if model == "local" else None
    except model_build.ModelBuildError as exc:  # said before anything is installed or started
        raise MeshError(str(exc)) from None
    settings = infra.InfraSettings.from_env()
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
    infra_specs = infra.prepare(home, settings, creds, progress, managed=managed)
    specs = [
        *infra_specs,
        mesh.sentry_spec(bins, home),
        mesh.placement_spec(bins, home),
        mesh.scheduler_spec(bins, home),
        mesh.tracestore_spec(home),
        *mesh.service_specs(bins, home, tokens),
        mesh.watchdog_spec(home),
    ]
    if local is not None:
        specs = model_server.with_profile(home, specs, model)
        url = model_server.base_url()
        progress(f"model profile local: {local.name} ({local.gguf.name}) at {url}")
    return MeshPlan(bins, tokens, settings, creds, specs)


def start_infra(
    home: Path, progress: Progress, model: str = "offline"
) -> tuple[Supervisor, MeshPlan]:
    """Infrastructure and the Dapr control plane only (what the integration tests need)."""
    p = plan(home, progress, model)
    sup = Supervisor(home)
    sup.write(p.specs)
    sup.start_daemon()
    for spec in p.specs:
        if spec.group == "infra":
            progress(f"starting {spec.name}")
            sup.start(spec.name)
    infra.wait_ready(p.infra_settings, p.credentials, 120, progress)
    infra.bootstrap_after_start(p.infra_settings, p.credentials, progress)
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


def up(home: Path, progress: Progress, model: str | None = None) -> list[health.Probe]:
    """Bring the whole mesh up and return the health of every part. ``model``: the model
    profile, ``offline`` or ``local`` (default: ``$AGENTIA_MODEL_PROFILE``, else offline)."""
    started = time.monotonic()
    try:
        mesh.trace_sampling()  # a bad setting is named before anything starts
        chosen = model_server.profile(model)
    except ValueError as exc:
        raise MeshError(str(exc)) from None
    try:
        sup, p = start_infra(home, progress, chosen)
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
    if any(p.name == "rabbitmq" for p in procs):
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
