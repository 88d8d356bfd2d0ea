"""Moving the local mesh's PostgreSQL cluster to the bundled server (PostgreSQL 16 with
pgvector) with ``pg_upgrade``: every database, role and password comes along; the old
cluster is kept beside the new one until the user removes it.

The mesh must be down (``agentia down``): pg_upgrade starts and stops both servers itself.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from agentia_tools.runtime.infra_servers import (
    ServerSetupError,
    _major,
    as_user,
    bundled_pg_bindir,
    initdb_command,
    own_dir,
    pg_bindir,
    run_as,
    server_root,
)

Progress = Callable[[str], None]


def upgrade_cluster(home: Path, progress: Progress) -> str:
    """Upgrade the cluster under ``home`` to the bundled server; says what was done."""
    root = server_root(home)
    data = root / "data" / "postgres"
    if not (data / "PG_VERSION").exists():
        raise ServerSetupError(f"no PostgreSQL cluster in {data} (`agentia up` creates one)")
    new_bin = bundled_pg_bindir()
    if new_bin is None:
        raise ServerSetupError("the bundled PostgreSQL is not installed (make venv installs it)")
    old_version, new_version = (data / "PG_VERSION").read_text().strip(), _major(new_bin)
    if old_version == new_version:
        return f"the cluster is already PostgreSQL {new_version}: nothing to do"
    if int(old_version) > int(new_version):
        raise ServerSetupError(
            f"the cluster is PostgreSQL {old_version}, newer than the bundled {new_version}"
        )
    if (data / "postmaster.pid").exists():
        raise ServerSetupError("PostgreSQL is running (or died uncleanly): `agentia down` first")
    old_bin = pg_bindir(data)
    user = run_as("postgres")
    new = root / "data" / "postgres.new"
    backup = root / "data" / f"postgres.{old_version}.old"
    if backup.exists():
        raise ServerSetupError(f"{backup} exists from an earlier upgrade: remove it first")
    shutil.rmtree(new, ignore_errors=True)
    own_dir(new, user)
    work = own_dir(root / "run" / "pg_upgrade", user)
    progress(f"postgres: creating a PostgreSQL {new_version} cluster beside the old one")
    _run(as_user(user, initdb_command(new_bin, new)), "initdb", work)
    progress(f"postgres: pg_upgrade {old_version} → {new_version} (copying the data files)")
    cmd = [str(new_bin / "pg_upgrade"), "-b", str(old_bin), "-B", str(new_bin)]
    cmd += ["-d", str(data), "-D", str(new), "-U", "postgres", "-s", str(work)]
    _run(as_user(user, cmd), f"pg_upgrade (logs under {new / 'pg_upgrade_output.d'})", work)
    data.rename(backup)
    new.rename(data)
    return (
        f"PostgreSQL {old_version} → {new_version}: done. `agentia up` starts it, enables "
        f"pgvector, and the memory service moves its vectors into the index. The old cluster "
        f"is kept in {backup}; remove it once satisfied."
    )


def _run(cmd: list[str], what: str, cwd: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise ServerSetupError(f"{what} failed: " + " | ".join(tail))
