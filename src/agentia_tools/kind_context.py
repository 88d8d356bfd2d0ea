"""The service image's build context, made here rather than by Docker.

BuildKit reads ``deploy/docker/Dockerfile.dockerignore``; Docker's legacy builder (the one
that works offline: BuildKit fetches its Dockerfile frontend image) reads only the
context root's ``.dockerignore`` and would send everything else, ``.git`` and
``.agentia`` (local secrets) included. So `agentia kind` builds the context itself, as a
tar of exactly what the ignore file lets in, and pipes it to ``docker build -``: the same
context with either builder.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from functools import cache
from pathlib import Path

from agentia.paths import repo_root

DOCKERFILE = "deploy/docker/Dockerfile"
PRUNED = {".git", ".venv", ".agentia", "node_modules", ".mypy_cache", ".ruff_cache"}


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def read_patterns(path: Path) -> list[tuple[str, bool]]:
    """(pattern, excludes) in file order; ``!pattern`` re-includes."""
    out = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        out.append((pattern, not negated))
    return out


def excluded(rel: str, patterns: list[tuple[str, bool]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = rel.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for pattern, excludes in patterns:
        regex = _regex(pattern)
        if any(regex.match(c) for c in candidates):
            result = excludes
    return result


def context_files(root: Path | None = None) -> list[str]:
    """Relative paths of the files the ignore file lets into the context, sorted."""
    base = root or repo_root()
    patterns = read_patterns(base / f"{DOCKERFILE}.dockerignore")
    files = []
    for folder, dirs, names in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d not in PRUNED)
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), base)
            if not excluded(rel, patterns):
                files.append(rel)
    return sorted(files)


def context_tar(root: Path | None = None) -> bytes:
    """The build context: the allowed files plus the Dockerfile (Docker always sends it)."""
    base = root or repo_root()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel in sorted({*context_files(base), DOCKERFILE}):
            info = tar.gettarinfo(str(base / rel), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0  # the same files give the same context: Docker's cache holds
            with (base / rel).open("rb") as f:
                tar.addfile(info, f)
    return buf.getvalue()
