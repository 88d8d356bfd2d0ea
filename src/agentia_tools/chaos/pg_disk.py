"""PostgreSQL's WAL disk fills up (``"module": "agentia_tools.chaos.pg_disk"``).

The local cluster's ``pg_wal`` is moved onto a small tmpfs of its own (:func:`wal_on_small_disk`,
before the load starts, so that restart is not the fault under test), with max_wal_size
below that disk's size so checkpoints keep the WAL within it. Then
(:func:`wal_disk_full`) a ballast file takes every free byte and WAL segment switches are
forced until PostgreSQL needs a new segment file: it cannot create one, PANICs, and cannot
finish crash recovery (recovery writes WAL too) for as long as the disk stays full. The
ballast is then removed and the server recovers. Every run, workflow and ledger write that
was acknowledged before the PANIC must survive it; every one attempted during it must be
retried, never acknowledged and dropped.

The rollback (:func:`wal_back_on_disk`) always moves the WAL back onto the real disk (server
stopped, files copied back, tmpfs unmounted): the WAL on tmpfs is the cluster's only copy
while the experiment runs.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Final

from agentia.paths import agentia_home
from agentia_tools.chaos import actions, injected
from agentia_tools.chaos import load as load_mod
from agentia_tools.runtime.infra import InfraSettings
from agentia_tools.runtime.infra_servers import (
    as_user,
    pg_bindir,
    postgres_socket_dir,
    run_as,
    server_root,
)
from agentia_tools.runtime.supervisor import Supervisor

WAL_FS_MB: Final = 160
SEGMENT: Final = re.compile(r"[0-9A-F]{24}")  # timeline, then segment number
WAL_HEADROOM_MB: Final = 64  # free room on the small disk before the ballast goes in
# Checkpoints must recycle WAL well before the small disk fills on its own: with the default
# max_wal_size (1 GB) a busy mesh refilled the 160 MB disk after it was freed, and
# PostgreSQL crash-looped until the rollback (seen in a two-hour soak).
SMALL_WAL_SETTINGS: Final = {"max_wal_size": "64MB", "min_wal_size": "32MB"}
MAX_HOLD_S: Final = 300.0
MAX_SWITCHES: Final = 64  # 16 MB segments: more than a 160 MB disk can hold


class WalDiskError(RuntimeError):
    """The WAL could not be moved, filled or brought back."""


def _paths() -> tuple[Path, Path, Path]:
    root = server_root(agentia_home())
    data = root / "data" / "postgres"
    return data, data / "pg_wal", root / "run" / "pg-wal-fs"


def _sh(*cmd: str) -> None:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise WalDiskError(f"{' '.join(cmd)}: {(proc.stderr or proc.stdout).strip()}")


def _mounted(path: Path) -> bool:
    return any(
        line.split()[1] == str(path) for line in Path("/proc/mounts").read_text().splitlines()
    )


def wal_on_small_disk(size_mb: int = WAL_FS_MB) -> str:
    """Restart PostgreSQL with its pg_wal on a ``size_mb`` tmpfs (a symlink, as initdb -X
    makes), or a larger one when the WAL in use holds more than ``size_mb`` less
    ``WAL_HEADROOM_MB``: the ballast fills whatever is free, so the fault is the same."""
    data, wal, fs = _paths()
    if wal.is_symlink():
        return f"pg_wal already on {os.readlink(wal)}"
    user = run_as("postgres")
    _small_wal_settings(on=True)
    proc = _psql("CHECKPOINT")  # segments behind it beyond the new sizes go now
    if proc.returncode != 0:
        raise WalDiskError(f"CHECKPOINT: {(proc.stderr or proc.stdout).strip()}")
    sup = Supervisor(agentia_home())
    sup.stop("postgres")
    keep = _in_use(data, wal)
    held_mb = -(-sum(f.stat().st_size for f in keep) // (1 << 20))
    size_mb = max(size_mb, held_mb + WAL_HEADROOM_MB)
    fs.mkdir(parents=True, exist_ok=True)
    if _mounted(fs):  # left by an earlier try; pg_wal is not on it, so it holds nothing
        _sh("umount", str(fs))
    _sh("mount", "-t", "tmpfs", "-o", f"size={int(size_mb)}m,mode=0700", "tmpfs", str(fs))
    try:
        dest = fs / "pg_wal"
        dest.mkdir(mode=0o700)
        _sh("cp", "-a", *(str(f) for f in keep), str(wal / "archive_status"), str(dest))
    except (WalDiskError, OSError):  # back as it was: the server on its own WAL
        _sh("umount", str(fs))
        sup.start("postgres", wait=False)
        actions.wait_healthy(120)
        raise
    if user:
        shutil.chown(fs, user, user)
        shutil.chown(dest, user, user)
    wal.rename(data / "pg_wal.ondisk")
    wal.symlink_to(dest)
    sup.start("postgres", wait=False)
    took = actions.wait_healthy(120)
    sizes = ", ".join(f"{k} {v}" for k, v in SMALL_WAL_SETTINGS.items())
    return (
        f"pg_wal ({held_mb} MB in use) moved onto a {size_mb} MB tmpfs ({fs}) with {sizes}; "
        f"mesh healthy after {took:.1f}s"
    )


def _in_use(data: Path, wal: Path) -> list[Path]:
    """The files of a cleanly stopped server's pg_wal that it can read again: all but the
    segments recycled ahead of its last checkpoint (renamed old files kept for reuse; a
    server that ran for an hour held 128 MB of them, and with them on the small disk a
    segment switch needs no new file, so a full disk fails nothing)."""
    proc = subprocess.run(
        as_user(run_as("postgres"), [str(pg_bindir(data) / "pg_controldata"), "-D", str(data)]),
        capture_output=True,
        text=True,
        timeout=30,
    )
    redo = next(
        (
            line.split(":", 1)[1].strip()
            for line in proc.stdout.splitlines()
            if line.startswith("Latest checkpoint's REDO WAL file")
        ),
        "",
    )
    if proc.returncode != 0 or not SEGMENT.fullmatch(redo):
        raise WalDiskError(f"pg_controldata: no REDO WAL file ({(proc.stderr or '').strip()})")
    return [f for f in sorted(wal.iterdir()) if f.is_file() and not recycled_ahead(f.name, redo)]


def recycled_ahead(name: str, redo: str) -> bool:
    """Whether a pg_wal file is a segment numbered after the REDO segment (history, backup
    and partial files are kept)."""
    return bool(SEGMENT.fullmatch(name)) and name[8:] > redo[8:]


def _fill(path: Path) -> int:
    """Write zeros until the filesystem is full; the bytes written."""
    chunk = b"\0" * (1 << 20)
    written = 0
    with path.open("wb") as fh:
        while True:
            try:
                written += fh.write(chunk)
                fh.flush()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    try:
        with path.open("ab") as fh:  # the last partial chunk's worth
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
                written += 4096
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    return written


def _psql(*statements: str) -> subprocess.CompletedProcess[str]:
    """Run each statement on its own (ALTER SYSTEM refuses a transaction block), as the
    superuser over the unix socket."""
    settings = InfraSettings.from_env()
    sock = postgres_socket_dir(server_root(agentia_home()), settings.postgres_port)
    psql = [str(pg_bindir(_paths()[0]) / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    psql += ["-h", str(sock), "-p", str(settings.postgres_port), "-U", "postgres"]
    psql += ["-d", "postgres"]
    for sql in statements:
        psql += ["-c", sql]
    return subprocess.run(
        as_user(run_as("postgres"), psql), capture_output=True, text=True, timeout=30
    )


def _small_wal_settings(on: bool) -> None:
    """Set (or reset) the WAL sizes for the small disk; they take effect on reload."""
    if on:
        sql = [f"ALTER SYSTEM SET {k} = '{v}'" for k, v in SMALL_WAL_SETTINGS.items()]
    else:
        sql = [f"ALTER SYSTEM RESET {k}" for k in SMALL_WAL_SETTINGS]
    proc = _psql(*sql, "SELECT pg_reload_conf()")
    if proc.returncode != 0:
        raise WalDiskError(f"WAL settings: {(proc.stderr or proc.stdout).strip()}")


def _switch_wal() -> bool:
    """Write one WAL record and switch segments; whether the server answered."""
    proc = _psql(
        "SELECT pg_logical_emit_message(false, 'agentia-chaos', 'x')", "SELECT pg_switch_wal()"
    )
    return proc.returncode == 0


def wal_disk_full(seconds: float = 20) -> str:
    """Fill the WAL disk, force segment switches until PostgreSQL fails, hold it full for
    ``seconds``, then free it and wait for the mesh to be healthy."""
    _, wal, fs = _paths()
    if not wal.is_symlink():
        raise WalDiskError("pg_wal is not on the small disk: run wal_on_small_disk first")
    load = load_mod.CURRENT.get("load")
    ballast = fs / "ballast"
    filled = _fill(ballast)
    if load is not None:
        load.fault_at = time.monotonic()
    started = time.monotonic()
    switches = 0
    while switches < MAX_SWITCHES and _switch_wal():
        switches += 1
    failed_after = time.monotonic() - started
    injected.fault()
    if switches >= MAX_SWITCHES:
        ballast.unlink()
        raise WalDiskError(f"PostgreSQL took {switches} segment switches on a full disk")
    time.sleep(min(seconds, MAX_HOLD_S))
    ballast.unlink()
    sup = Supervisor(agentia_home())
    if not any(p.name == "postgres" and p.state == "RUNNING" for p in sup.processes()):
        sup.start("postgres", wait=False)
    took = actions.wait_healthy(180)
    actions.FAULTS["ended"] = time.time()
    if load is not None:
        load.recovery_s = round(took, 2)
    return (
        f"WAL disk filled ({filled >> 20} MB of ballast); PostgreSQL failed after {switches} "
        f"forced segment switches ({failed_after:.1f}s); held full {seconds:g}s; mesh healthy "
        f"{took:.1f}s after the disk was freed"
    )


def wal_back_on_disk() -> str:
    """Rollback: the WAL back on the real disk, the tmpfs gone, PostgreSQL running."""
    data, wal, fs = _paths()
    if not wal.is_symlink():
        if _mounted(fs):
            _sh("umount", str(fs))
        sup = Supervisor(agentia_home())
        if not any(p.name == "postgres" and p.state == "RUNNING" for p in sup.processes()):
            sup.start("postgres", wait=False)
        actions.wait_healthy(180)
        _small_wal_settings(on=False)
        return "pg_wal is on the real disk, default WAL sizes"
    sup = Supervisor(agentia_home())
    (fs / "ballast").unlink(missing_ok=True)
    sup.stop("postgres")
    staged = data / "pg_wal.back"
    shutil.rmtree(staged, ignore_errors=True)
    _sh("cp", "-a", str(fs / "pg_wal"), str(staged))
    wal.unlink()
    staged.rename(wal)
    shutil.rmtree(data / "pg_wal.ondisk", ignore_errors=True)
    _sh("umount", str(fs))
    sup.start("postgres", wait=False)
    took = actions.wait_healthy(180)
    _small_wal_settings(on=False)
    return f"pg_wal back on the real disk, default WAL sizes; mesh healthy after {took:.1f}s"
