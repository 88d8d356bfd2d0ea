"""Local network helpers."""

from __future__ import annotations

import socket
from contextlib import ExitStack

from agentia import names


def mesh_ports() -> set[int]:
    """Every fixed port of the local mesh (kept out of the ports handed out below)."""
    fixed = {
        names.PLACEMENT_PORT,
        names.PLACEMENT_HEALTHZ_PORT,
        names.PLACEMENT_METRICS_PORT,
        names.PLACEMENT_RAFT_PORT,
        names.SCHEDULER_PORT,
        names.SCHEDULER_HEALTHZ_PORT,
        names.SCHEDULER_METRICS_PORT,
        names.SCHEDULER_ETCD_CLIENT_PORT,
        names.SCHEDULER_ETCD_PEER_PORT,
    }
    for p in names.PORTS.values():
        fixed |= {p.app, p.dapr_http, p.dapr_grpc, p.dapr_internal_grpc, p.dapr_metrics}
    return fixed


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports, none of them one of the mesh's fixed ports
    (all are held open while choosing, so none repeats)."""
    reserved = mesh_ports()
    with ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port not in reserved:
                ports.append(port)
        return ports
