"""The partition cuts the named process's loopback connections, and only those: a client
process in the cut cannot reach the server (new connections and an open one), another
process can, and healing lets the cut one through again. Real cgroup v2 and iptables."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from agentia_tools.chaos.partition import Cut, Direction, cut, heal
from agentia_tools.net import free_ports

pytestmark = pytest.mark.integration

# A client that, told a port, connects to the loopback server once per line on stdin and
# prints "ok" or the error, with a short timeout: a cut shows as a timeout, not a refusal.
CLIENT = """
import socket, sys
port = int(sys.argv[1])
for line in sys.stdin:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.5) as s:
            s.sendall(b"ping")
            s.settimeout(1.5)
            print("ok" if s.recv(4) == b"pong" else "bad", flush=True)
    except OSError as exc:
        print(type(exc).__name__, flush=True)
"""

SERVER = """
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(64)
def serve(conn):
    with conn:
        if conn.recv(4) == b"ping":
            conn.sendall(b"pong")
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


@pytest.fixture
def port() -> Iterator[int]:
    (chosen,) = free_ports(1)
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(chosen)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", chosen)) == 0:
                break
        time.sleep(0.05)
    yield chosen
    heal()
    server.kill()
    server.wait()


def client(port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def attempt(proc: subprocess.Popen[str]) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


@pytest.mark.parametrize("direction", ["both", "outbound", "inbound"])
def test_only_the_cut_process_is_cut_until_healed(port: int, direction: Direction) -> None:
    inside, outside = client(port), client(port)
    try:
        assert attempt(inside) == "ok" and attempt(outside) == "ok"
        cut([Cut("test-client", (port,))], direction, lambda _: inside.pid)
        assert attempt(inside) in ("TimeoutError", "timeout"), "the cut process got through"
        assert attempt(outside) == "ok", "a process outside the cut was cut too"
        heal()
        assert attempt(inside) == "ok", "still cut after healing"
    finally:
        for proc in (inside, outside):
            proc.kill()
            proc.wait()


def test_an_open_connection_goes_silent_under_the_cut(port: int) -> None:
    inside = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket,sys\n"
            "s=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=5)\n"
            "print('connected',flush=True);sys.stdin.readline();s.sendall(b'ping')\n"
            "try: print(s.recv(4).decode() or 'closed',flush=True)\n"
            "except OSError as e: print(type(e).__name__,flush=True)\n",
            str(port),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert inside.stdout is not None and inside.stdout.readline().strip() == "connected"
        cut([Cut("test-client", (port,))], "both", lambda _: inside.pid)
        assert attempt(inside) == "TimeoutError"
    finally:
        heal()
        inside.kill()
        inside.wait()
