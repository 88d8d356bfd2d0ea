"""Every port the local mesh opens listens on loopback only: the apps, their sidecars (HTTP and
gRPC APIs, internal gRPC, metrics), the Dapr control plane (APIs, healthz, metrics) and the
broker (AMQP, its Prometheus endpoint).

Dapr 1.18.0 parsed ``--healthz-listen-address`` and ``--metrics-listen-address`` but bound
all interfaces anyway; runtime/dapr/patches/dapr-listen-addresses.patch passes them through.
Read from the kernel's socket tables (/proc/net/tcp, tcp6), so nothing is taken on trust."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from agentia import names
from agentia_tools.runtime.infra_config import InfraSettings
from agentia_tools.runtime.infra_servers import rabbitmq_metrics_port

from .conftest import Infra, wait_for

LISTEN = "0A"


def listeners() -> dict[int, set[str]]:
    """Port -> the addresses a socket listens on it (IPv4 and IPv6)."""
    found: dict[int, set[str]] = defaultdict(set)
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != LISTEN:
                continue
            hex_addr, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_addr)
            # The kernel prints each 32-bit word in host (little-endian) order.
            ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
            found[int(hex_port, 16)].add(str(ipaddress.ip_address(ordered)))
    return found


def loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def mesh_ports() -> dict[int, str]:
    ports = {
        names.PLACEMENT_PORT: "placement",
        names.PLACEMENT_HEALTHZ_PORT: "placement healthz",
        names.PLACEMENT_METRICS_PORT: "placement metrics",
        names.SCHEDULER_PORT: "dapr-scheduler",
        names.SCHEDULER_HEALTHZ_PORT: "dapr-scheduler healthz",
        names.SCHEDULER_METRICS_PORT: "dapr-scheduler metrics",
        names.SENTRY_PORT: "sentry",
        names.SENTRY_HEALTHZ_PORT: "sentry healthz",
        names.SENTRY_METRICS_PORT: "sentry metrics",
    }
    mq = InfraSettings.from_env().rabbitmq_port
    ports |= {mq: "rabbitmq amqp", rabbitmq_metrics_port(mq): "rabbitmq prometheus"}
    for app_id, p in names.PORTS.items():
        ports |= {
            p.app: app_id,
            p.dapr_http: f"{app_id} sidecar http",
            p.dapr_grpc: f"{app_id} sidecar grpc",
            p.dapr_internal_grpc: f"{app_id} sidecar internal grpc",
            p.dapr_metrics: f"{app_id} sidecar metrics",
        }
    return ports


def test_the_socket_table_reads_loopback_and_the_rest_apart() -> None:
    assert loopback("127.0.0.1") and loopback("::1") and loopback("::ffff:127.0.0.1")
    assert not loopback("0.0.0.0") and not loopback("::") and not loopback("192.0.2.2")


def test_every_mesh_port_listens_on_loopback_only(
    infra: Infra, mesh_service: Callable[[str], None]
) -> None:
    for app_id in names.APP_IDS:
        mesh_service(app_id)
    ports = mesh_ports()
    # Every one is open (a port never opened cannot show its address) ...
    wait_for(lambda: set(ports) <= set(listeners()), timeout=60, what="every mesh port open")
    found = listeners()
    # ... and none on an address another machine can reach.
    open_to_network = {
        f"{what} ({port}): {sorted(found[port])}"
        for port, what in ports.items()
        if not all(loopback(a) for a in found[port])
    }
    assert open_to_network == set()
