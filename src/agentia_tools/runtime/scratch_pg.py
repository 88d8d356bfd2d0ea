"""A throwaway PostgreSQL cluster: initdb in a folder, started on a unix socket only (no
TCP port), stopped and removed afterwards. For tests and benchmarks that need a real
server of a given build (the bundled one with pgvector, or Debian's) beside the mesh's.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from agentia_tools.runtime.infra_servers import (
    ServerSetupError,
    as_user,
    initdb_command,
    own_dir,
    pg_bindir,
    run_as,
)

PORT = 5999  # only names the socket file; nothing listens on TCP


@contextlib.contextmanager
def scratch_postgres(
    bindir: Path | None = None, settings: dict[str, str] | None = None
) -> Iterator[str]:
    """Yield a ``postgresql://`` URL (superuser ``postgres``, database ``postgres``) of a new
    cluster run from ``bindir`` (default: the preferred server)."""
    bindir = bindir or pg_bindir()
    user = run_as("postgres")
    root = Path(tempfile.mkdtemp(prefix="agentia-pg-"))
    root.chmod(0o755)
    data, sock, log = root / "data", own_dir(root / "s", user), root / "s" / "log"
    own_dir(data, user)
    options = {"listen_addresses": "", "unix_socket_directories": str(sock), "port": str(PORT)}
    options.update(settings or {})
    opts = " ".join(f"-c {k}={v}" for k, v in options.items())
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log)]
    try:
        _check(as_user(user, initdb_command(bindir, data)), "initdb")
        _check(as_user(user, [*pg_ctl, "-o", opts, "-w", "-t", "60", "start"]), f"start ({log})")
        yield f"postgresql://postgres@/postgres?host={sock}&port={PORT}"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                as_user(user, [*pg_ctl, "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


def _check(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ServerSetupError(f"scratch PostgreSQL: {what} failed: {' | '.join(tail)}")
