"""Fixtures that start real parts: infrastructure, Dapr's control plane, apps with sidecars.

Nothing is mocked: RabbitMQ, PostgreSQL and Redis run from Debian's packages under the
mesh's supervisor (or are reused when already running), and each probe app gets its own
real daprd loading the project's ``components/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest

from agentia import names
from agentia.paths import agentia_home, repo_root
from agentia_tools.net import free_ports
from agentia_tools.runtime import health, mesh, orchestrate
from agentia_tools.runtime.daprbin import DaprBinaries
from agentia_tools.runtime.secrets_file import read_secrets
from agentia_tools.runtime.supervisor import Supervisor


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout}s")


@dataclass
class Infra:
    home: Path
    bins: DaprBinaries
    tokens: mesh.Tokens
    supervisor: Supervisor


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    home = agentia_home()
    sup = Supervisor(home)
    was_running = sup.running()
    sup, plan = orchestrate.start_infra(home, lambda m: print(f"[infra] {m}", flush=True))
    yield Infra(home, plan.bins, plan.tokens, sup)
    if not was_running and sup.running():
        orchestrate.down(home, lambda m: None)


@dataclass
class Sidecar:
    """A running sidecar the tests call through; what it calls carries its app's identity."""

    app_id: str
    ports: names.AppPorts
    token: str

    @property
    def dapr(self) -> str:
        return f"http://127.0.0.1:{self.ports.dapr_http}"

    def headers(self) -> dict[str, str]:
        return {"dapr-api-token": self.token}

    def invoke(
        self, target: str, verb: str, path: str, body: Any = None, timeout: float = 90
    ) -> httpx.Response:
        """Service invocation of ``target``'s ``path`` through this sidecar."""
        return httpx.request(
            verb,
            f"{self.dapr}/v1.0/invoke/{target}/method/{path}",
            json=body,
            headers=self.headers(),
            timeout=timeout,
        )


@dataclass
class ProbeApp(Sidecar):
    """A probe app and its sidecar, both real processes. Its app id is not in any callee's
    access policy (agentia_tools.access): mesh services refuse its invocations."""

    topic: str
    procs: list[subprocess.Popen[bytes]]
    log_dir: Path

    @property
    def app(self) -> str:
        return f"http://127.0.0.1:{self.ports.app}"

    def received(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.app}/received", timeout=5).json())

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def probe_apps(infra: Infra, tmp_path: Path) -> Iterator[Callable[..., ProbeApp]]:
    """Start probe apps with sidecars: ``probe_apps("pub")`` -> a running :class:`ProbeApp`."""
    started: list[ProbeApp] = []
    run = uuid.uuid4().hex[:8]

    def start(
        role: str,
        topic: str | None = None,
        subscribe: bool = True,
        resources: list[Path] | None = None,
    ) -> ProbeApp:
        app_id = f"probe-{role}-{run}"
        ports = names.AppPorts(*free_ports(5))
        topic = topic or f"probe.{run}"
        env = {
            **os.environ,
            **mesh.app_environment(app_id, ports, infra.tokens),
            "PROBE_TOPIC": topic,
            "PROBE_SUBSCRIBE": "1" if subscribe else "0",
        }
        log = (tmp_path / f"{app_id}.log").open("wb")
        app_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.integration.apps.probe_app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports.app),
                "--no-access-log",
            ],
            cwd=repo_root(),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        side_log = (tmp_path / f"{app_id}-dapr.log").open("wb")
        side_proc = subprocess.Popen(
            mesh.sidecar_command(infra.bins, app_id, ports, resources),
            cwd=infra.home,
            env=env,
            stdout=side_log,
            stderr=subprocess.STDOUT,
        )
        probe = ProbeApp(
            app_id, ports, infra.tokens.dapr_api_token, topic, [side_proc, app_proc], tmp_path
        )
        started.append(probe)

        def sidecar_ready() -> bool:
            if side_proc.poll() is not None:
                raise RuntimeError(f"daprd for {app_id} exited; see {tmp_path}")
            r = httpx.get(f"{probe.dapr}/v1.0/healthz", timeout=2)
            return r.status_code == 204

        wait_for(sidecar_ready, 60, f"sidecar of {app_id}")
        return probe

    yield start
    for probe in started:
        probe.stop()
    # Its durable queues outlive the probe: left bound to a mesh topic (runs.events), each
    # would store a copy of every later event for good, and the broker's work grows with it.
    url = read_secrets(infra.home)[names.SECRET_RABBITMQ_URL]
    params = pika.URLParameters(url)
    params.connection_attempts, params.socket_timeout = 3, 5
    with pika.BlockingConnection(params) as conn:
        channel = conn.channel()
        for probe in started:
            for queue in (f"{probe.app_id}-{probe.topic}", f"{probe.app_id}-{probe.topic}.dlq"):
                channel.queue_delete(queue)


@pytest.fixture(scope="session")
def mesh_service(infra: Infra) -> Iterator[Callable[[str], None]]:
    """Start a real mesh service and its sidecar: ``mesh_service("memory")``."""

    started: list[str] = []

    def start(app_id: str) -> None:
        for name in (app_id, mesh.sidecar_name(app_id)):
            proc = {p.name: p for p in infra.supervisor.processes()}.get(name)
            if proc is None or proc.state != "RUNNING":
                infra.supervisor.start(name, wait=False)
                started.append(name)
        wait_for(
            lambda: health.app_probe(app_id).ok and health.sidecar_probe(app_id).ok,
            90,
            f"{app_id} and its sidecar",
        )

    yield start
    if infra.supervisor.running():  # the mesh lifecycle test may have taken it all down
        for name in reversed(started):
            infra.supervisor.stop(name)


@pytest.fixture(scope="session")
def mesh_sidecar(infra: Infra, mesh_service: Callable[[str], None]) -> Callable[[str], Sidecar]:
    """The sidecar of a running mesh service, to invoke others as that service would:
    ``mesh_sidecar("gateway").invoke("memory", ...)``. The access policies apply."""

    def get(app_id: str) -> Sidecar:
        mesh_service(app_id)
        return Sidecar(app_id, names.PORTS[app_id], infra.tokens.dapr_api_token)

    return get


@pytest.fixture
def chat_ops(
    mesh_sidecar: Callable[[str], Sidecar], mesh_service: Callable[[str], None]
) -> Sidecar:
    """The gateway's sidecar, with memory and agent-runner up: what workflows that keep a
    transcript (the chat agent) need."""
    for app_id in (names.MEMORY, names.AGENT_RUNNER):
        mesh_service(app_id)
    return mesh_sidecar(names.GATEWAY)
