"""Supervision of the mesh's processes by supervisord (one process per service and sidecar).

We write supervisord's config from :class:`ProgramSpec` objects, start supervisord as a
daemon, and drive it over its XML-RPC interface on a unix socket, so that each process can
be started, stopped or killed on its own (the chaos suite relies on that) and has its own log.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport

from agentia_tools.runtime.programs import ProgramSpec


class SupervisorError(RuntimeError):
    """supervisord could not be started or refused an operation."""


@dataclass(frozen=True)
class ProcessState:
    """What supervisord knows of one process."""

    name: str
    group: str
    state: str  # RUNNING, STARTING, STOPPED, BACKOFF, EXITED, FATAL, ...
    pid: int
    description: str


class Supervisor:
    """One supervisord instance whose files live under ``home/supervisor``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.dir = home / "supervisor"
        self.logs = home / "logs"
        self.conf = self.dir / "supervisord.conf"
        self.sock = self.dir / "supervisor.sock"
        self.pidfile = self.dir / "supervisord.pid"
        self.groups_file = self.dir / "groups.json"

    # -- configuration -----------------------------------------------------------------
    def render(self, specs: Iterable[ProgramSpec]) -> str:
        """supervisord.conf for ``specs``: nothing autostarts; the CLI starts layers in order."""
        cp = configparser.RawConfigParser()
        cp["unix_http_server"] = {"file": str(self.sock), "chmod": "0700"}
        cp["supervisord"] = {
            "logfile": str(self.logs / "supervisord.log"),
            "pidfile": str(self.pidfile),
            "childlogdir": str(self.logs),
            "nodaemon": "false",
            "silent": "true",
            "minfds": "4096",
        }
        cp["rpcinterface:supervisor"] = {
            "supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"
        }
        cp["supervisorctl"] = {"serverurl": f"unix://{self.sock}"}
        for spec in specs:
            section: dict[str, str] = {
                "command": shlex.join(spec.command),
                "autostart": "false",
                "autorestart": "true",
                "startsecs": "1",
                "startretries": "100",
                "stopsignal": spec.stopsignal,
                "stopwaitsecs": str(spec.stopwaitsecs),
                "stopasgroup": "true",
                "killasgroup": "true",
                "priority": str(spec.priority),
                "redirect_stderr": "true",
                "stdout_logfile": str(self.logs / f"{spec.name}.log"),
                "stdout_logfile_maxbytes": "20MB",
                "stdout_logfile_backups": "2",
            }
            if spec.directory:
                section["directory"] = str(spec.directory)
            if spec.user:
                section["user"] = spec.user
            if spec.environment:
                section["environment"] = ",".join(
                    f'{k}="{_escape(v)}"' for k, v in sorted(spec.environment.items())
                )
            cp[f"program:{spec.name}"] = section
        buf = io.StringIO()
        cp.write(buf)
        return buf.getvalue()

    def write(self, specs: list[ProgramSpec]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.render(specs))
        self.conf.chmod(0o600)  # it carries the tokens in the programs' environment
        self.groups_file.write_text(json.dumps({s.name: s.group for s in specs}, indent=1))

    # -- lifecycle -----------------------------------------------------------------------
    def rpc(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.sock}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def running(self) -> bool:
        if not self.sock.exists():
            return False
        try:
            state = self.rpc().supervisor.getState()
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            return False
        return bool(state.get("statename") == "RUNNING")

    def start_daemon(self) -> None:
        """Start supervisord, or make a running one reload the new config."""
        if self.running():
            added, changed, removed = self.rpc().supervisor.reloadConfig()[0]
            for name in removed + changed:
                self._stop_quietly(name)
                self.rpc().supervisor.removeProcessGroup(name)
            for name in changed + added:
                self.rpc().supervisor.addProcessGroup(name)
            return
        cmd = [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.running():
                return
            time.sleep(0.1)
        raise SupervisorError(f"supervisord did not come up; see {self.logs / 'supervisord.log'}")

    def shutdown(self, timeout: float = 60) -> None:
        """Stop every process, then supervisord itself; waits until it is gone."""
        if not self.running():
            return
        with contextlib.suppress(xmlrpc.client.Fault):
            self.rpc().supervisor.stopAllProcesses(True)
        pid = self._pid()
        self.rpc().supervisor.shutdown()
        deadline = time.monotonic() + timeout
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)

    def _pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    # -- processes -----------------------------------------------------------------------
    def processes(self) -> list[ProcessState]:
        if not self.running():
            return []
        infos = cast(list[dict[str, Any]], self.rpc().supervisor.getAllProcessInfo())
        groups = self.groups()
        return [
            ProcessState(
                i["name"], groups.get(i["name"], ""), i["statename"], i["pid"], i["description"]
            )
            for i in infos
        ]

    def groups(self) -> dict[str, str]:
        """Process name -> layer (infra, control-plane, app, sidecar)."""
        try:
            return cast(dict[str, str], json.loads(self.groups_file.read_text()))
        except (OSError, ValueError):
            return {}

    def start(self, name: str, wait: bool = True) -> None:
        try:
            self.rpc().supervisor.startProcess(name, wait)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise SupervisorError(f"cannot start {name}: {fault.faultString}") from fault

    def stop(self, name: str, wait: bool = True) -> None:
        self._stop_quietly(name, wait)

    def _stop_quietly(self, name: str, wait: bool = True) -> None:
        try:
            self.rpc().supervisor.stopProcess(name, wait)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString and "BAD_NAME" not in fault.faultString:
                raise SupervisorError(f"cannot stop {name}: {fault.faultString}") from fault

    def kill(self, name: str, sig: str = "KILL") -> None:
        """Send a signal to the process (supervisord restarts it: autorestart)."""
        self.rpc().supervisor.signalProcess(name, sig)

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"


def _escape(value: str) -> str:
    return value.replace("%", "%%").replace('"', '\\"')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_until(
    check: Callable[[], tuple[bool, str]], timeout: float, what: str, interval: float = 0.25
) -> None:
    """Poll ``check`` until it says ok; raise with its last reason after ``timeout``."""
    deadline = time.monotonic() + timeout
    reason = "not checked"
    while time.monotonic() < deadline:
        ok, reason = check()
        if ok:
            return
        time.sleep(interval)
    raise SupervisorError(f"{what} not ready after {timeout:.0f}s: {reason}")
