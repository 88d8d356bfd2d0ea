"""Network faults between the sidecars and RabbitMQ, with Toxiproxy.

Toxiproxy is a Go module, built once into the cache like the Dapr binaries. For an
experiment the sidecars are pointed at a proxy in front of the broker (the ``rabbitmq-url``
secret names the proxy's port, and every sidecar restarts to read it); toxics then add
latency or cut the link, and the rollback points them back and stops the proxy. The chaos
load's own watcher reads the broker directly, so it sees what really arrived.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from agentia import names
from agentia.paths import agentia_home, cache_home
from agentia_tools.chaos import injected
from agentia_tools.net import free_ports
from agentia_tools.runtime import health
from agentia_tools.runtime.mesh import sidecar_name
from agentia_tools.runtime.secrets_file import read_secrets, write_secrets
from agentia_tools.runtime.supervisor import Supervisor

VERSION = "v2.5.0"
MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server"
API = "http://127.0.0.1:8474"
PROXY = "rabbitmq"
DIRECT = "rabbitmq-url-direct"  # where the real broker URL waits while the proxy is in use


def binary() -> Path:
    """toxiproxy-server, built from its Go module the first time (about 10 s)."""
    folder = cache_home() / "toxiproxy" / VERSION
    path = folder / "server"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["go", "install", f"{MODULE}@{VERSION}"],
            env={**os.environ, "GOBIN": str(folder)},
            check=True,
            capture_output=True,
            timeout=600,
        )
    return path


def _pid_file() -> Path:
    return agentia_home() / "chaos" / "toxiproxy.pid"


def _restart_sidecars(timeout: float = 120) -> None:
    sup = Supervisor(agentia_home())
    for app_id in names.APP_IDS:
        sup.stop(sidecar_name(app_id))
        sup.start(sidecar_name(app_id), wait=False)
    deadline = time.monotonic() + timeout
    while not all(p.ok for p in health.mesh_probes()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"sidecars not healthy {timeout:.0f}s after the restart")
        time.sleep(0.5)


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


def route_through_proxy() -> str:
    """Start Toxiproxy in front of the broker and restart the sidecars onto it."""
    home = agentia_home()
    log = (home / "logs" / "toxiproxy.log").open("ab")
    proc = subprocess.Popen([str(binary()), "-host", "127.0.0.1"], stdout=log, stderr=log)
    _pid_file().parent.mkdir(parents=True, exist_ok=True)
    _pid_file().write_text(str(proc.pid))
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{API}/version", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    secrets = read_secrets(home)
    upstream = urlsplit(secrets[names.SECRET_RABBITMQ_URL])
    port = free_ports(1)[0]  # not 25672: RabbitMQ's own distribution port is AMQP + 20000
    proxy = {
        "name": PROXY,
        "listen": f"127.0.0.1:{port}",
        "upstream": f"{upstream.hostname}:{upstream.port or 5672}",
        "enabled": True,
    }
    httpx.post(f"{API}/proxies", json=proxy, timeout=5).raise_for_status()
    secrets[DIRECT] = secrets[names.SECRET_RABBITMQ_URL]
    secrets[names.SECRET_RABBITMQ_URL] = _with_port(secrets[DIRECT], port)
    write_secrets(home, secrets)
    _restart_sidecars()
    return f"sidecars reach RabbitMQ through Toxiproxy on port {port}"


def add_latency(ms: int = 300, seconds: float = 10) -> str:
    """Delay everything between the sidecars and the broker by ``ms`` for ``seconds``."""
    toxic = {
        "name": "lag",
        "type": "latency",
        "stream": "downstream",
        "attributes": {"latency": ms, "jitter": ms // 5},
    }
    httpx.post(f"{API}/proxies/{PROXY}/toxics", json=toxic, timeout=5).raise_for_status()
    injected.fault()
    time.sleep(seconds)
    httpx.delete(f"{API}/proxies/{PROXY}/toxics/lag", timeout=5).raise_for_status()
    return f"{ms} ms latency for {seconds:g}s"


def partition(seconds: float = 15) -> str:
    """Cut the link (connections dropped, new ones refused) for ``seconds``."""
    httpx.post(f"{API}/proxies/{PROXY}", json={"enabled": False}, timeout=5).raise_for_status()
    injected.fault()
    time.sleep(seconds)
    httpx.post(f"{API}/proxies/{PROXY}", json={"enabled": True}, timeout=5).raise_for_status()
    return f"broker unreachable from the sidecars for {seconds:g}s"


def route_direct() -> str:
    """Rollback: the sidecars back on the broker itself, and Toxiproxy stopped."""
    home = agentia_home()
    secrets = read_secrets(home)
    direct = secrets.pop(DIRECT, None)
    if direct:
        secrets[names.SECRET_RABBITMQ_URL] = direct
        write_secrets(home, secrets)
        _restart_sidecars()
    pid_file = _pid_file()
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), 15)
        pid_file.unlink()
    return "sidecars on the broker directly; Toxiproxy stopped"
