"""Find the Dapr runtime binaries, or build them once from the Go module and cache them.

Order: the folder in ``$AGENTIA_DAPR_BIN_DIR``; ``~/.dapr/bin`` (what ``dapr init`` installs);
``PATH``; the per-user cache; else build with ``runtime/dapr/build.sh`` into the cache. The
cache folder's name carries a hash of the build inputs, so changing the curated component
set or the pinned version builds anew, and an interrupted build never leaves half a cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agentia.paths import cache_home, repo_root

DAPR_VERSION: Final = "1.18.0"
REQUIRED: Final = ("daprd", "placement", "scheduler", "sentry")


class DaprBinariesError(RuntimeError):
    """The Dapr binaries are missing and cannot be built; the message says what to do."""


@dataclass(frozen=True)
class DaprBinaries:
    """Where the Dapr runtime binaries are, which version, and where they came from."""

    daprd: Path
    placement: Path
    scheduler: Path
    sentry: Path
    version: str
    source: str


def build_dir() -> Path:
    return repo_root() / "runtime" / "dapr"


def build_hash() -> str:
    """Short hash of everything that determines the built binaries."""
    digest = hashlib.sha256()
    root = build_dir()
    patches = sorted(str(p.relative_to(root)) for p in (root / "patches").glob("*.patch"))
    for rel in ("go.mod", "go.sum", "build.sh", "curated/components.go", *patches):
        path = root / rel
        digest.update(rel.encode())
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:12]


def cache_dir() -> Path:
    return cache_home() / "dapr" / f"v{DAPR_VERSION}-{build_hash()}"


def _from_folder(folder: Path, source: str, *, strict: bool) -> DaprBinaries | None:
    paths = {name: folder / name for name in REQUIRED}
    missing = [n for n, p in paths.items() if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        if strict:
            raise DaprBinariesError(f"{source}: {folder} has no executable {', '.join(missing)}")
        return None
    return DaprBinaries(
        daprd=paths["daprd"],
        placement=paths["placement"],
        scheduler=paths["scheduler"],
        sentry=paths["sentry"],
        version=daprd_version(paths["daprd"]),
        source=source,
    )


def daprd_version(daprd: Path) -> str:
    try:
        out = subprocess.run(
            [str(daprd), "--version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "unknown"


def find_dapr_binaries() -> DaprBinaries | None:
    """The binaries the user already has, or a cached build; never builds."""
    env = os.environ.get("AGENTIA_DAPR_BIN_DIR")
    if env:
        return _from_folder(Path(env).expanduser(), "env AGENTIA_DAPR_BIN_DIR", strict=True)
    found = _from_folder(Path.home() / ".dapr" / "bin", "~/.dapr/bin", strict=False)
    if found:
        return found
    on_path = {name: shutil.which(name) for name in REQUIRED}
    if all(on_path.values()):
        folders = {Path(p).parent for p in on_path.values() if p}
        if len(folders) == 1:
            return _from_folder(folders.pop(), "PATH", strict=False)
    return _from_folder(cache_dir(), "cache", strict=False)


def ensure_dapr_binaries(
    progress: Callable[[str], None] = print, *, build: bool = True
) -> DaprBinaries:
    """The Dapr binaries, building them into the cache first when none are found."""
    found = find_dapr_binaries()
    if found:
        if found.source != "cache" and not found.version.startswith(DAPR_VERSION.rsplit(".", 1)[0]):
            progress(
                f"warning: {found.source} has Dapr {found.version}; Agentia is tested with "
                f"{DAPR_VERSION}"
            )
        return found
    if not build:
        raise DaprBinariesError("no Dapr binaries found and building is disabled")
    if not shutil.which("go"):
        raise DaprBinariesError(
            "no Dapr binaries found and Go is not installed: install Go >= 1.26 so Agentia can "
            "build them, or set AGENTIA_DAPR_BIN_DIR to a folder with daprd, placement, "
            "scheduler and sentry"
        )
    target = cache_dir()
    tmp = target.with_name(f"{target.name}.building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    progress(f"building Dapr {DAPR_VERSION} from its Go module (once; cached in {target})")
    started = time.monotonic()
    proc = subprocess.Popen(
        ["bash", str(build_dir() / "build.sh"), str(tmp)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        progress(line.rstrip())
        tail = [*tail[-30:], line]
    if proc.wait() != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DaprBinariesError("building Dapr failed:\n" + "".join(tail))
    if target.exists():  # another build finished first; keep it
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(target)
    progress(f"Dapr built in {time.monotonic() - started:.0f}s")
    result = _from_folder(target, "built", strict=True)
    assert result is not None
    return result
