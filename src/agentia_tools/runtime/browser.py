"""Debian's Chromium for the console's end-to-end tests (and anyone who wants a headless
browser here): installed once from Debian's packages when missing, as the mesh's servers are.
Playwright drives it through ``executable_path``; it never downloads a browser of its own."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from agentia_tools.runtime.infra import InfraError, apt_install, install_command

CHROMIUM = Path("/usr/bin/chromium")
PACKAGE = "chromium"


def ensure_chromium(progress: Callable[[str], None], path: Path = CHROMIUM) -> Path:
    """The Chromium binary, installing Debian's ``chromium`` package first when it is absent
    (root only; otherwise the error names the command to run)."""
    if path.exists():
        return path
    cmd = " ".join(install_command([PACKAGE]))
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise InfraError(
            f"{path} is missing; install Debian's Chromium as root with:\n  sudo {cmd}"
        )
    progress(f"installing {PACKAGE} from Debian's packages (once; about 300 MB)")
    apt_install([PACKAGE], progress)
    if not path.exists():
        raise InfraError(f"`{cmd}` succeeded but {path} is still missing")
    progress(f"installed {PACKAGE}: {path}")
    return path
