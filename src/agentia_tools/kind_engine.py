"""The host side of `agentia kind`: the tools it needs, and a Docker engine that answers.

Where Docker already answers, it is used as it is. Where it does not and this user may
start it (root, Debian's ``dockerd`` installed), `agentia kind` starts ``dockerd`` itself
(no systemd here), logging to the kind cache. On hosts whose capability bounding set
lacks a capability (``docker run --privileged`` then fails with ``unable to apply caps``),
that engine runs containers through :mod:`agentia_tools.kind_runc`; elsewhere it does not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from agentia.paths import cache_home
from agentia_tools import kind_runc
from agentia_tools.runtime import debian
from agentia_tools.runtime.infra_config import InfraError

RUNTIME_NAME: Final = "agentia-runc"
# What the offline build needs from Debian, by the command (or file) that shows it is there.
HOST_PACKAGES: Final = {
    "dockerd": "docker.io",
    "debootstrap": "debootstrap",
    "gcc": "gcc",
    "/usr/include/seccomp.h": "libseccomp-dev",  # runc is built with cgo and seccomp
    "/usr/lib/x86_64-linux-gnu/libc.a": "libc6-dev",  # the static `pause`
}
Progress = Callable[[str], None]


class EngineError(RuntimeError):
    """Docker or a host tool is missing or failing; the message says what to do."""


def kind_cache() -> Path:
    """Everything `agentia kind build` makes, keyed by versions inside
    (``$AGENTIA_KIND_CACHE``, else ``~/.cache/agentia/kind``)."""
    env = os.environ.get("AGENTIA_KIND_CACHE")
    return Path(env) if env else cache_home() / "kind"


def engine_dir() -> Path:
    return kind_cache() / "engine"


def host_probes() -> dict[str, str]:
    """What the offline build needs, by probe (x86_64 paths for files); no dockerd is needed
    where a Docker engine already answers."""
    probes = dict(HOST_PACKAGES)
    # `docker info` only when dockerd is absent: it can take seconds to answer.
    if not debian.present("dockerd") and docker_answers():
        probes.pop("dockerd")
    return probes


def ensure_host_packages(progress: Progress) -> None:
    """Install what is missing with apt-get when root; otherwise name the packages."""
    try:
        debian.ensure(host_probes(), progress, "agentia kind builds its images offline")
    except InfraError as exc:
        raise EngineError(str(exc)) from exc


def docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    proc = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=60)
    return proc.returncode == 0


def write_runc_wrapper(real_runc: str) -> Path:
    """The wrapper script (kind_runc.py with the real runc's path), rewritten when changed."""
    source = Path(kind_runc.__file__).read_text()
    text = "#!/usr/bin/python3 -I\n" + source.replace(
        'REAL_RUNC = "/usr/sbin/runc"', f"REAL_RUNC = {real_runc!r}", 1
    )
    target = engine_dir() / "runc-wrapper"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_text() != text:
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(target)
    return target


def dockerd_command(missing_caps: list[str], wrapper: Path | None) -> list[str]:
    """How `agentia kind` starts dockerd: the wrapper as default runtime only when needed."""
    cmd = ["dockerd"]
    if missing_caps and wrapper is not None:
        cmd += [f"--add-runtime={RUNTIME_NAME}={wrapper}", f"--default-runtime={RUNTIME_NAME}"]
    return cmd


def ensure_engine(progress: Progress, timeout_s: float = 90.0) -> None:
    """Docker answers afterwards, or EngineError says why not."""
    if docker_answers():
        return
    if not shutil.which("dockerd"):
        raise EngineError(
            "the Docker engine is not answering and dockerd is not installed: install "
            "Docker (Debian: apt-get install docker.io) or start your engine"
        )
    if os.geteuid() != 0:
        raise EngineError("the Docker engine is not answering (`docker info` fails): start it")
    missing_caps = kind_runc.host_missing()
    wrapper = None
    if missing_caps:
        real = shutil.which("runc")
        if not real:
            raise EngineError("runc is not installed (Debian: apt-get install runc)")
        if not Path("/usr/bin/python3").exists():
            raise EngineError(
                f"this host lacks {', '.join(missing_caps)}, so containers must run through "
                "a runc wrapper, which needs /usr/bin/python3 (Debian: apt-get install python3)"
            )
        wrapper = write_runc_wrapper(real)
        progress(
            f"this host's capability bounding set lacks {', '.join(missing_caps)}: the engine "
            f"runs containers through {wrapper}, which drops them"
        )
    log = engine_dir() / "dockerd.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    progress(f"starting the Docker engine (dockerd; log {log})")
    with log.open("ab") as out:
        subprocess.Popen(  # detached: the engine outlives this command, as a service would
            dockerd_command(missing_caps, wrapper),
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if docker_answers():
            return
        time.sleep(1)
    tail = log.read_text(errors="replace")[-1500:]
    raise EngineError(f"dockerd did not answer within {timeout_s:.0f}s; its log ends:\n{tail}")


def privileged_probe(image: str) -> str | None:
    """None when a privileged container runs; else the engine's error (for a running engine
    that was not started with the wrapper on a host that needs it)."""
    proc = subprocess.run(
        ["docker", "run", "--rm", "--privileged", "--network=none", "--entrypoint", "true", image],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode == 0:
        return None
    return proc.stderr.strip()[-600:]


def explain_caps_failure(error: str) -> str:
    wrapper = write_runc_wrapper(shutil.which("runc") or "/usr/sbin/runc")
    return (
        f"privileged containers fail on this engine ({error}). This host lacks "
        f"{', '.join(kind_runc.host_missing())}; restart dockerd with "
        f"`{' '.join(dockerd_command(kind_runc.host_missing(), wrapper))}` "
        "(or stop it and let `agentia kind build` start it)"
    )
