"""Debian's Chromium for the console's end-to-end tests (and anyone who wants a headless
browser here): installed once from Debian's packages when missing, as the mesh's servers are.
Playwright drives it through ``executable_path``; it never downloads a browser of its own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agentia_tools.runtime import debian

CHROMIUM = Path("/usr/bin/chromium")
PACKAGE = "chromium"


def ensure_chromium(progress: Callable[[str], None], path: Path = CHROMIUM) -> Path:
    """The Chromium binary, installing Debian's ``chromium`` package first when it is absent
    (root only; otherwise the error names the command to run)."""
    debian.ensure({str(path): PACKAGE}, progress, "a headless browser, about 300 MB")
    return path
