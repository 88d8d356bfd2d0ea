"""Debian's packages for what the project runs itself: installed when missing, as root.

The mesh's servers, iptables for partitions, Chromium for the console's browser tests, jq for
the docs' examples and the host tools of the offline kind build all come from here. Without
root (or apt-get) nothing is installed: the error names the exact command to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from agentia_tools.runtime.infra_config import InfraError

Progress = Callable[[str], None]


def install_command(packages: list[str]) -> list[str]:
    return ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]


def can_install() -> bool:
    """Root, with apt-get: packages can be installed here."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def present(probe: str) -> bool:
    """A probe is an absolute path (a file a package ships) or a command on PATH."""
    return Path(probe).exists() if probe.startswith("/") else shutil.which(probe) is not None


def missing(probes: Mapping[str, str]) -> list[str]:
    """The packages (each once, in order) whose probe is absent; ``probes`` maps a command or
    file to the package that brings it."""
    out: list[str] = []
    for probe, package in probes.items():
        if not present(probe) and package not in out:
            out.append(package)
    return out


def ensure(probes: Mapping[str, str], progress: Progress, why: str) -> None:
    """Install the packages whose probe is absent; ``why`` says what needs them. Without root
    an InfraError names the command; a package that installs without its probe is an error."""
    packages = missing(probes)
    if not packages:
        return
    cmd = " ".join(install_command(packages))
    if not can_install():
        raise InfraError(
            f"{why}: {', '.join(packages)} missing; install as root with:\n  sudo {cmd}"
        )
    progress(f"installing {', '.join(packages)} from Debian's packages (once; {why})")
    apt_install(packages, progress)
    still = [p for p in probes if not present(p)]
    if still:
        raise InfraError(f"`{cmd}` succeeded but {', '.join(still)} is still missing")
    progress(f"installed {', '.join(packages)}")


def apt_install(packages: list[str], progress: Progress) -> None:
    """`apt-get install` (as root), refreshing the package lists once when they are stale;
    a failure raises InfraError with the end of apt's own message."""
    cmd = install_command(packages)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 and _stale_lists(proc.stderr):
        progress("package lists are stale: apt-get update, then installing again")
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        raise InfraError(f"`{' '.join(cmd)}` failed:\n{tail}")


def _stale_lists(stderr: str) -> bool:
    text = stderr.lower()
    stale = ("unable to locate package", "no installation candidate", "404", "failed to fetch")
    return any(s in text for s in stale)
