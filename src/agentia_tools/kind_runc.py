"""A runc wrapper for hosts whose capability bounding set lacks some capabilities.

Docker 20.10 gives a ``--privileged`` container every capability it knows, and runc fails
with ``unable to apply caps: operation not permitted`` when the host's bounding set lacks
one of them (every kind node is privileged). This file is copied, as a standalone script
run by the system's python3, next to the Docker engine that `agentia kind` starts; the
engine is told to use it as its default runtime. It drops from the OCI bundle's
``config.json`` (``create``/``run``) or the ``--process`` file (``exec``) the capabilities
the bounding set lacks, then execs the real runc with the same arguments.

Standard library only, no import of agentia: it runs outside the project's virtualenv.
"""

from __future__ import annotations

import json
import os
import sys

REAL_RUNC = "/usr/sbin/runc"  # replaced by the path of the real runc when installed
# Linux capability numbers 0..40 (include/uapi/linux/capability.h).
CAPABILITIES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]


def bounding_set(status: str) -> int:
    """The ``CapBnd`` mask of a ``/proc/<pid>/status`` text."""
    for line in status.splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise ValueError("no CapBnd line")


def missing(mask: int, last_cap: int) -> list[str]:
    """``CAP_*`` names up to ``last_cap`` that are not in the bounding mask."""
    top = min(last_cap, len(CAPABILITIES) - 1)
    return [f"CAP_{CAPABILITIES[n]}" for n in range(top + 1) if not mask >> n & 1]


def host_missing() -> list[str]:
    """The capabilities this process's bounding set lacks (what a child can never get)."""
    with open("/proc/self/status") as f:
        mask = bounding_set(f.read())
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    return missing(mask, last)


def strip(capabilities: dict[str, list[str]], drop: set[str]) -> bool:
    """Remove ``drop`` from every set of an OCI ``capabilities`` object; True if changed."""
    changed = False
    for key, names in capabilities.items():
        if isinstance(names, list):
            kept = [n for n in names if n not in drop]
            changed |= len(kept) != len(names)
            capabilities[key] = kept
    return changed


def _option(args: list[str], *names: str) -> str | None:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


GLOBAL_WITH_VALUE = ("--root", "--log", "--log-format", "--criu", "--rootless")


def subcommand(args: list[str]) -> str | None:
    """runc's command: the first argument that is neither a global option nor its value."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in GLOBAL_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def _rewrite(path: str, drop: set[str], bundle: bool) -> None:
    with open(path) as f:
        doc = json.load(f)
    caps = (doc.get("process") or {}).get("capabilities") if bundle else doc.get("capabilities")
    if isinstance(caps, dict) and strip(caps, drop):
        tmp = f"{path}.agentia-tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)


def main(argv: list[str]) -> None:
    drop = set(host_missing())
    if drop:
        command = subcommand(argv)
        bundle = _option(argv, "--bundle", "-b")
        if bundle and command in ("create", "run"):
            _rewrite(os.path.join(bundle, "config.json"), drop, bundle=True)
        process = _option(argv, "--process", "-p")
        if process and command == "exec":
            _rewrite(process, drop, bundle=False)
    os.execv(REAL_RUNC, [REAL_RUNC, *argv])  # noqa: S606 - this wrapper's whole point


if __name__ == "__main__":
    main(sys.argv[1:])
