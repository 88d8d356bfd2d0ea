"""A failover TCP front for the local RabbitMQ cluster: one AMQP address for three nodes.

Dapr's RabbitMQ component takes one connection string. Where a cluster runs behind a load
balancer (a Kubernetes Service) that balancer picks a live node; on one machine this does:

- every node is probed twice a second with the AMQP protocol header; a node that does not
  answer ``connection.start`` within a second (down, frozen by SIGSTOP, paused as the
  minority of a partition) is out;
- each new client connection goes to the first node that is in, in the order given;
- when a node goes out, the front closes the client connections it holds: the clients
  reconnect at once (through the front, to a live node) instead of waiting out their
  heartbeats on a node that no longer answers.

Bytes are copied as they are; the front keeps no state a restart would lose.
``python -m agentia_tools.runtime.broker_front --listen 127.0.0.1:5672 --backend …``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import struct
from dataclasses import dataclass, field
from typing import Final

log = logging.getLogger("agentia.broker_front")
PROTOCOL_HEADER: Final = b"AMQP\x00\x00\x09\x01"
PROBE_EVERY_S: Final = 0.5
PROBE_TIMEOUT_S: Final = 1.0
# Consecutive failed probes before a node is out (one lost probe on a loaded machine is not).
FAILS_TO_DROP: Final = 2
CONNECT_TIMEOUT_S: Final = 2.0


def is_connection_start(frame: bytes) -> bool:
    """A method frame on channel 0 carrying connection.start (class 10, method 10): what a
    serving node answers the protocol header with."""
    if len(frame) < 11:
        return False
    kind, channel, _size, class_id, method_id = struct.unpack("!BHIHH", frame[:11])
    return bool(kind == 1 and channel == 0 and class_id == 10 and method_id == 10)


def answers_amqp(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """The probe, blocking: the node at ``host:port`` answers the protocol header with
    connection.start (it serves clients: not down, frozen or paused)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(PROTOCOL_HEADER)
            frame = b""
            while len(frame) < 11:
                chunk = sock.recv(11 - len(frame))
                if not chunk:
                    return False
                frame += chunk
    except OSError:
        return False
    return is_connection_start(frame)


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected host:port, got {text!r}")
    return host, int(port)


@dataclass
class Backend:
    """One node: whether it is in, and the client connections it holds."""

    host: str
    port: int
    healthy: bool = False
    fails: int = 0
    links: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


async def probe(backend: Backend) -> str | None:
    """None when the node answers the protocol header with connection.start; else why not."""
    writer = None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(backend.host, backend.port)
            writer.write(PROTOCOL_HEADER)
            await writer.drain()
            frame = await reader.readexactly(11)
        return None if is_connection_start(frame) else "no connection.start"
    except TimeoutError:
        return "no answer within 1s"
    except (OSError, asyncio.IncompleteReadError) as exc:
        return type(exc).__name__
    finally:
        if writer is not None:
            writer.close()


class Front:
    def __init__(self, backends: list[Backend]) -> None:
        self.backends = backends

    async def watch(self) -> None:
        while True:
            results = await asyncio.gather(*(probe(b) for b in self.backends))
            for backend, why in zip(self.backends, results, strict=True):
                self._mark(backend, why)
            await asyncio.sleep(PROBE_EVERY_S)

    def _mark(self, backend: Backend, why: str | None) -> None:
        if why is None:
            if not backend.healthy:
                log.warning("node %s in", backend.name)
            backend.healthy, backend.fails = True, 0
            return
        backend.fails += 1
        if backend.healthy and backend.fails >= FAILS_TO_DROP:
            backend.healthy = False
            log.warning(
                "node %s out (%s); closing its %d client connections",
                backend.name,
                why,
                len(backend.links),
            )
            for writer in list(backend.links):
                writer.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for backend in [b for b in self.backends if b.healthy]:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    up_reader, up_writer = await asyncio.open_connection(backend.host, backend.port)
            except (OSError, TimeoutError):
                continue
            backend.links.add(writer)
            try:
                await _pipe(reader, writer, up_reader, up_writer)
            finally:
                backend.links.discard(writer)
            return
        writer.close()  # no node is in: the client's own reconnect tries again


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until either side closes; then close both."""
    tasks = [
        asyncio.create_task(_copy(reader, up_writer)),
        asyncio.create_task(_copy(up_reader, writer)),
    ]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    writer.close()
    up_writer.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def main(listen: tuple[str, int], backends: list[Backend]) -> None:
    front = Front(backends)
    watcher = asyncio.create_task(front.watch())
    server = await asyncio.start_server(front.serve, *listen, reuse_address=True)
    log.warning("broker front on %s:%d for %s", *listen, ", ".join(b.name for b in backends))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=parse_address, required=True)
    parser.add_argument("--backend", type=parse_address, action="append", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    asyncio.run(main(args.listen, [Backend(h, p) for h, p in args.backend]))


if __name__ == "__main__":
    cli()
