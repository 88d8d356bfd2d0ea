"""Container images built offline: Debian rootfs from debootstrap, images from Dockerfiles
on top of them (Docker's legacy builder: BuildKit would fetch its frontend image), and
single-binary images assembled from a tar (``docker import``).

Every image built here is tagged ``…:<name>-<key>`` where the key hashes its inputs, so an
image is rebuilt only when what it is made of changed; the tags consumers expect
(``registry.k8s.io/…``, the manifests' tags) are added to the same image.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

from agentia.paths import repo_root
from agentia_tools.kind_engine import kind_cache

Progress = Callable[[str], None]
LOCAL: Final = "agentia.local"  # the registry name of images built here (never pushed)
MIRROR: Final = os.environ.get("AGENTIA_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR: Final = "http://deb.debian.org/debian-security"
NONROOT: Final = 65532  # the distroless "nonroot" user Dapr's chart expects images to run as
RECIPE: Final = "1"  # bump to rebuild every image after a change of how they are made
LABEL: Final = "io.agentia_tools.kind.recipe"  # on every image built here: its key


class ImageError(RuntimeError):
    """An image could not be built; the message has the failing step's output."""


def images_dir() -> Path:
    return repo_root() / "deploy" / "kind" / "recipes" / "images"


def digest(*parts: str | bytes | Path) -> str:
    """A short hash of strings, bytes, files and folders (their relative paths and bytes)."""
    h = hashlib.sha256(RECIPE.encode())
    for part in parts:
        if isinstance(part, Path):
            files = sorted(p for p in part.rglob("*") if p.is_file()) if part.is_dir() else [part]
            for f in files:
                h.update(str(f.relative_to(part) if part.is_dir() else f.name).encode())
                h.update(f.read_bytes())
        else:
            h.update(part.encode() if isinstance(part, str) else part)
    return h.hexdigest()[:12]


def docker(*args: str, stdin: bytes | None = None) -> str:
    proc = subprocess.run(["docker", *args], input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()[-2000:]
        raise ImageError(f"docker {' '.join(args[:3])} … failed: {err}")
    return proc.stdout.decode(errors="replace")


def exists(ref: str) -> bool:
    proc = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, check=False)
    return proc.returncode == 0


def built_here(ref: str) -> bool:
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}', ref],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and proc.stdout.strip() not in ("", "<no value>")


def pullable(ref: str, timeout_s: float = 60) -> bool:
    """The normal image: present (and not one built here) or pulled now, where a registry
    is reachable. Offline the pull fails at once (no name resolves)."""
    if exists(ref):
        return not built_here(ref)
    try:
        proc = subprocess.run(
            ["docker", "pull", "-q", ref], capture_output=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def tag(source: str, *targets: str) -> None:
    for target in targets:
        docker("tag", source, target)


def stream(
    cmd: list[str], what: str, progress: Progress, env: dict[str, str] | None = None
) -> None:
    """Run a long command, printing a line every 20 s and the tail of its output on failure."""
    started = time.monotonic()
    last = started
    tail: list[str] = []
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip()
        tail = [*tail[-40:], line]
        now = time.monotonic()
        if now - last >= 20:
            progress(f"  {what}: {now - started:.0f}s … {line[:100]}")
            last = now
    if proc.wait() != 0:
        raise ImageError(f"{what} failed:\n" + "\n".join(tail))


def debian_base(suite: str, progress: Progress) -> str:
    """``agentia.local/debian:<suite>-<key>``: a minbase rootfs from debootstrap, imported."""
    ref = f"{LOCAL}/debian:{suite}-{digest('debootstrap', suite, MIRROR)}"
    if exists(ref):
        return ref
    if not shutil.which("debootstrap"):
        raise ImageError("debootstrap is not installed (Debian: apt-get install debootstrap)")
    progress(f"building the Debian {suite} base from debootstrap (once; ~2 min)")
    work = Path(tempfile.mkdtemp(prefix=f"rootfs-{suite}-", dir=kind_cache()))
    try:
        root = work / "rootfs"
        stream(
            ["nice", "-n", "19", "debootstrap", "--variant=minbase", suite, str(root), MIRROR],
            f"debootstrap {suite}",
            progress,
        )
        (root / "etc/apt/sources.list").write_text(
            f"deb {MIRROR} {suite} main\n"
            f"deb {MIRROR} {suite}-updates main\n"
            f"deb {SECURITY_MIRROR} {suite}-security main\n"
        )
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (root / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        changes = ["--change", 'CMD ["bash"]', "--change", f"LABEL {LABEL}={suite}"]
        imp = subprocess.run(
            ["docker", "import", *changes, "-", ref],
            stdin=tar.stdout,
            capture_output=True,
            check=False,
        )
        tar.wait()
        if imp.returncode != 0:
            raise ImageError(f"docker import of the {suite} rootfs failed: {imp.stderr!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ref


def dockerfile_image(
    name: str,
    base: str,
    progress: Progress,
    *,
    files: dict[str, Path] | None = None,
    args: dict[str, str] | None = None,
    tags: Iterable[str] = (),
) -> str:
    """Build ``deploy/kind/recipes/images/<name>/`` (plus ``files``: context path -> file)
    FROM ``base``; returns ``agentia.local/<name>:<key>`` and adds ``tags``."""
    folder = images_dir() / name
    extra = files or {}
    key = digest(folder, base, repr(sorted((args or {}).items())), *extra.values())
    ref = f"{LOCAL}/{name}:{key}"
    if not exists(ref):
        progress(f"building image {ref}")
        with tempfile.TemporaryDirectory(prefix=f"ctx-{name}-", dir=kind_cache()) as ctx:
            shutil.copytree(folder, ctx, dirs_exist_ok=True)
            for rel, src in extra.items():
                dst = Path(ctx) / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, dst, dirs_exist_ok=True)
                else:
                    shutil.copy2(src, dst)
            cmd = ["docker", "build", "-t", ref, "--label", f"{LABEL}={key}"]
            cmd += ["--build-arg", f"BASE={base}"]
            for k, v in (args or {}).items():
                cmd += ["--build-arg", f"{k}={v}"]
            stream(["nice", "-n", "19", *cmd, ctx], f"image {name}", progress, env=LEGACY_BUILDER)
    tag(ref, *tags)
    return ref


LEGACY_BUILDER: Final = {"DOCKER_BUILDKIT": "0"}


def _tar_entry(out: tarfile.TarFile, path: str, data: bytes | None, mode: int) -> None:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.mode = mode
    info.mtime = 0
    if data is None:
        info.type = tarfile.DIRTYPE
        out.addfile(info)
    else:
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))


def binary_image(
    name: str,
    binaries: dict[str, Path],
    *,
    entrypoint: list[str] | None = None,
    user: int = 0,
    tags: Iterable[str] = (),
) -> str:
    """A distroless-like image from static binaries (image path -> file): /etc/passwd with
    root and nonroot, /tmp, PATH. Returns ``agentia.local/<name>:<key>``; adds ``tags``."""
    key = digest(
        *(f"{k}={v.stat().st_size}" for k, v in sorted(binaries.items())),
        *binaries.values(),
        repr(entrypoint),
        str(user),
    )
    full = f"{LOCAL}/{name}:{key}"
    if not exists(full):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as out:
            for d in ("etc", "tmp", "usr", "usr/local", "usr/local/bin", "home", "home/nonroot"):
                _tar_entry(out, d, None, 0o1777 if d == "tmp" else 0o755)
            passwd = (
                "root:x:0:0:root:/root:/sbin/nologin\n"
                f"nonroot:x:{NONROOT}:{NONROOT}::/home/nonroot:/sbin/nologin\n"
            )
            _tar_entry(out, "etc/passwd", passwd.encode(), 0o644)
            _tar_entry(out, "etc/group", f"root:x:0:\nnonroot:x:{NONROOT}:\n".encode(), 0o644)
            for dest, src in binaries.items():
                _tar_entry(out, dest, src.read_bytes(), 0o755)
        changes = ["ENV PATH=/usr/local/bin:/usr/bin:/bin", f"USER {user}:{user}"]
        changes.append(f"LABEL {LABEL}={key}")
        if entrypoint:
            changes.append("ENTRYPOINT " + str(entrypoint).replace("'", '"'))
        args = [a for c in changes for a in ("--change", c)]
        docker("import", *args, "-", full, stdin=buf.getvalue())
    tag(full, *tags)
    return full


def save(refs: list[str], target: Path, progress: Progress) -> None:
    """``docker save`` into the cache (atomically), so a wiped Docker is refilled quickly."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    progress(f"saving {len(refs)} image(s) to {target}")
    docker("save", "-o", str(tmp), *refs)
    tmp.replace(target)


def load(source: Path, progress: Progress) -> None:
    progress(f"loading saved images from {source}")
    started = time.monotonic()
    docker("load", "-i", str(source))
    progress(f"  loaded in {time.monotonic() - started:.0f}s")
